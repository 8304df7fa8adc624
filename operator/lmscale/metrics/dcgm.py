"""GPU utilisation from NVIDIA's DCGM exporter, joined to deployments through their pods.

DCGM series carry `namespace` and `pod` (the exporter's Kubernetes mapping) but not the
pod's labels, so the deployment comes from a series the engine itself exports for that pod.
Scraped by NVIDIA's GPU Operator ServiceMonitor (honorLabels off), those two arrive as
`exported_namespace` and `exported_pod` (`namespace` and `pod` then name the exporter):
`LMSCALE_DCGM_NAMESPACE_LABEL` / `LMSCALE_DCGM_POD_LABEL` name them, and the query copies
them onto the engine's label names before the join.
`DCGM_FI_DEV_GPU_UTIL` is a percentage; the result is 0..1, the mean over all GPUs of a
deployment's serving pods. It reads near 100 whenever any kernel runs, so the policy uses
it as a secondary signal only.
"""

from __future__ import annotations

import dataclasses

from lmscale.metrics import promql
from lmscale.metrics.source import EngineSource

GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"


def _dcgm_series(ctx: promql.QueryContext) -> str:
    """Fresh GPU series, labelled with the model pod's namespace and name under the
    engine's label names."""
    ns = ctx.dcgm_namespace_label or ctx.namespace_label
    pod = ctx.dcgm_pod_label or ctx.pod_label
    own = dataclasses.replace(ctx, namespace_label=ns, pod_label=pod)
    gpus = promql.fresh_series(promql.selector(GPU_UTIL, own, pods=True), own)
    for target, source in ((ctx.namespace_label, ns), (ctx.pod_label, pod)):
        if source != target:
            gpus = f'label_replace({gpus}, "{target}", "$1", "{source}", "(.+)")'
    return gpus


def gpu_utilization(engine: EngineSource, ctx: promql.QueryContext) -> str:
    """Mean GPU utilisation (0..1) per deployment of `engine`."""
    gpus = _dcgm_series(ctx)
    pods = promql.pod_deployments(engine.pod_series(), ctx)
    on = f"{ctx.namespace_label}, {ctx.pod_label}"
    joined = f"{gpus} * on ({on}) group_left ({ctx.deployment_label}) {pods}"
    return f"avg by ({ctx.group}) ({joined}) / 100"
