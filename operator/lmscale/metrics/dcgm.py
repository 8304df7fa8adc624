"""GPU utilisation from NVIDIA's DCGM exporter, joined to deployments through their pods.

DCGM series carry `namespace` and `pod` (the exporter's Kubernetes mapping) but not the
pod's labels, so the deployment comes from a series the engine itself exports for that pod.
`DCGM_FI_DEV_GPU_UTIL` is a percentage; the result is 0..1, the mean over all GPUs of a
deployment's serving pods. It reads near 100 whenever any kernel runs, so the policy uses
it as a secondary signal only.
"""

from __future__ import annotations

from lmscale.metrics import promql
from lmscale.metrics.source import EngineSource

GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"


def gpu_utilization(engine: EngineSource, ctx: promql.QueryContext) -> str:
    """Mean GPU utilisation (0..1) per deployment of `engine`."""
    gpus = promql.fresh_series(promql.selector(GPU_UTIL, ctx, pods=True), ctx)
    pods = promql.pod_deployments(engine.pod_series(), ctx)
    on = f"{ctx.namespace_label}, {ctx.pod_label}"
    joined = f"{gpus} * on ({on}) group_left ({ctx.deployment_label}) {pods}"
    return f"avg by ({ctx.group}) ({joined}) / 100"
