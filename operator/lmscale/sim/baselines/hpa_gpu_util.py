"""`hpa-gpu-util`: a Kubernetes HPA on DCGM GPU utilisation (Pods metric, average value).

As `replica_calculator.go` computes it for a pods metric: usage ratio of the mean
`DCGM_FI_DEV_GPU_UTIL` over pods with metrics to the target (70% by default), a 10%
tolerance, unready pods counted as 0% on a scale-up, missing pods as on-target when
shrinking and 0% when growing, never against the ratio; then `horizontal.go`'s default
behaviour (no scale-up window, +4 pods or +100% per 15 s; 300 s scale-down window,
-100% per 15 s) and min/max, every 15 s (the HPA sync period).

DCGM reads a GPU as busy whenever any kernel runs, so one request per replica looks
like full utilisation: the baseline inherits that trap on purpose.
"""

from __future__ import annotations

import math

from lmscale.sim.baselines.hpa import HpaController
from lmscale.sim.observe import ClusterView

HPA_SYNC_SECONDS = 15.0
_EPSILON = 1e-9


def replica_count(
    *,
    current: int,
    utilizations: list[float],
    ready: int,
    unready: int,
    target: float,
    tolerance: float = 0.1,
) -> int:
    """`calcPlainMetricReplicas` for one pods metric; `current` when no pod reports."""
    if not utilizations:
        return current
    missing = max(0, ready - len(utilizations))
    ratio = sum(utilizations) / len(utilizations) / target
    up_with_unready = unready > 0 and ratio > 1
    if not up_with_unready and missing == 0:
        if abs(1 - ratio) <= tolerance + _EPSILON:
            return current
        return math.ceil(ratio * len(utilizations) - _EPSILON)
    values = list(utilizations)
    if missing:
        values += [target if ratio < 1 else 0.0] * missing
    if up_with_unready:
        values += [0.0] * unready
    new_ratio = sum(values) / len(values) / target
    if (
        abs(1 - new_ratio) <= tolerance + _EPSILON
        or (ratio < 1 < new_ratio)
        or (ratio > 1 > new_ratio)
    ):
        return current
    wanted = math.ceil(new_ratio * len(values) - _EPSILON)
    if (new_ratio < 1 and wanted > current) or (new_ratio > 1 and wanted < current):
        return current
    return wanted


class HpaGpuUtilScaler:
    """The HPA controller for one Deployment, scaling on mean GPU utilisation."""

    least_loaded_first = False

    def __init__(
        self, *, target: float = 0.7, min_replicas: int = 1, max_replicas: int = 32
    ) -> None:
        if not 0 < target <= 1:
            raise ValueError(f"GPU utilisation target is a fraction in (0, 1], got {target}")
        self.name = f"hpa-gpu-util:{target:g}"
        self.target = target
        self.period_seconds = HPA_SYNC_SECONDS
        self.hpa = HpaController(min_replicas=min_replicas, max_replicas=max_replicas)

    def desired(self, view: ClusterView) -> int:
        current = view.spec_replicas
        raw = replica_count(
            current=current,
            utilizations=[pod.gpu_busy for pod in view.pods],
            ready=view.ready_replicas,
            unready=len(view.starting_ages),
            target=self.target,
        )
        return self.hpa.normalize(raw, current=current, now=view.now)
