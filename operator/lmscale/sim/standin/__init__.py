"""The engine stand-in: one real HTTP server per pod that plays one replica of vLLM, TGI or SGLang.

It takes the real engine's command line (checked against the flag list of the pinned release,
`lmscale.render.flags`), serves the OpenAI API with streaming, the engine's health and
readiness paths and its /metrics under the real names, paces tokens with the planner's step
model through the simulator's engine model (`lmscale.sim.engine`), and drains on SIGTERM.
It exists so that pods on a real node run something that behaves like the engine, without a
GPU or weights. Run it as `python -m lmscale.sim.standin {vllm,tgi,sglang} ARGS...`, or through
the shims in operator/standin/ that install the engines' own command names.
"""
