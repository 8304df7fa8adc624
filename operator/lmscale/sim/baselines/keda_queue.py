"""`keda-queue`: a KEDA ScaledObject with a Prometheus trigger on waiting requests.

As vLLM's production-stack chart configures it: query `sum(vllm:num_requests_waiting)`,
threshold 5 per replica, `pollingInterval` 30 s, `cooldownPeriod` 300 s. KEDA hands the
value to an HPA as an External metric with an AverageValue target, which computes
`GetExternalPerPodMetricReplicas`: `ceil(value / threshold)` unless within the 10%
tolerance of the current count; the HPA's default behaviour and min/max follow. An
empty queue therefore asks for zero replicas (clamped to the minimum), however busy the
running batches are. KEDA itself only moves between zero and one: it activates on a
value above `activationThreshold` (0) and returns to zero after `cooldownPeriod` without
activity, when `minReplicaCount` is 0.
"""

from __future__ import annotations

import math

from lmscale.sim.baselines.hpa import HpaController
from lmscale.sim.observe import ClusterView

POLLING_SECONDS = 30.0
COOLDOWN_SECONDS = 300.0
_EPSILON = 1e-9


def external_replicas(
    *, value: float, threshold: float, current: int, tolerance: float = 0.1
) -> int:
    """`GetExternalPerPodMetricReplicas` for an AverageValue target."""
    if current <= 0:
        return math.ceil(value / threshold - _EPSILON)
    ratio = value / (threshold * current)
    if abs(1 - ratio) <= tolerance + _EPSILON:
        return current
    return math.ceil(value / threshold - _EPSILON)


class KedaQueueScaler:
    """KEDA's operator plus the HPA it creates, for one Deployment."""

    least_loaded_first = False

    def __init__(
        self, *, threshold: float = 5.0, min_replicas: int = 1, max_replicas: int = 32
    ) -> None:
        if threshold <= 0:
            raise ValueError(f"KEDA threshold must be positive, got {threshold}")
        self.name = f"keda-queue:{threshold:g}"
        self.threshold = threshold
        self.min_replicas = min_replicas
        self.period_seconds = POLLING_SECONDS
        self.hpa = HpaController(min_replicas=max(1, min_replicas), max_replicas=max_replicas)
        self.last_active: float | None = None

    def desired(self, view: ClusterView) -> int:
        now, current = view.now, view.spec_replicas
        value = float(view.waiting)
        if value > 0:
            self.last_active = now
        if self.min_replicas == 0:
            if current == 0:
                return 1 if value > 0 else 0  # KEDA activates 0 -> 1; the HPA takes over
            idle_since = self.last_active if self.last_active is not None else 0.0
            if value == 0 and now - idle_since >= COOLDOWN_SECONDS:
                return 0
        raw = external_replicas(value=value, threshold=self.threshold, current=current)
        return self.hpa.normalize(raw, current=current, now=now)
