# The engine stand-in image: the operator image plus the engines' command names, so that the
# pods lmscale renders (`vllm serve ...`, `text-generation-launcher ...`,
# `python3 -m sglang.launch_server ...`) start `lmscale.sim.standin` with their real
# command line. See operator/standin/README.md. Build context: the repository root.
ARG OPERATOR_IMAGE=localhost/lmscale/lmscale:dev
FROM ${OPERATOR_IMAGE}
COPY operator/standin/bin/vllm operator/standin/bin/text-generation-launcher /usr/local/bin/
COPY operator/standin/sglang /opt/standin/sglang
# The real node advertises L40S GPUs; a model's spec.engine.env may say otherwise.
ENV PYTHONPATH=/opt/standin \
    LMSCALE_STANDIN_GPU=nvidia-l40s
ENTRYPOINT []
CMD []
