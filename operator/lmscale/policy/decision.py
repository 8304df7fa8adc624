"""The outcome of one policy cycle: a replica count, why, and the new history."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from lmscale.policy.history import ScalingHistory


class DecisionReason(enum.StrEnum):
    """Why the replica count is what it is; used for status, events and metric labels.

    The HPA-compatible members keep the names the HPA uses for its conditions.
    """

    LOAD_ABOVE_TARGET = "LoadAboveTarget"
    LOAD_BELOW_TARGET = "LoadBelowTarget"
    WITHIN_TOLERANCE = "WithinTolerance"
    SLO_BREACH = "SLOBreach"
    PREFILL_ABOVE_TARGET = "PrefillAboveTarget"
    VOLATILITY_HEADROOM = "VolatilityHeadroom"
    COLD_START_GUARD = "ColdStartGuard"
    UNREADY_PODS = "UnreadyPods"
    MISSING_POD_METRICS = "MissingPodMetrics"
    MISSING_METRICS = "MissingMetrics"
    MISSING_METRICS_SCALE_UP_ONLY = "MissingMetricsScaleUpOnly"
    MISSING_METRICS_FALLBACK = "MissingMetricsFallback"
    GPU_UTILIZATION_HIGH = "GPUUtilizationHigh"
    KV_CACHE_FULL = "KVCacheFull"
    IDLE_SCALE_TO_ZERO = "IdleScaleToZero"
    ACTIVATE_FROM_ZERO = "ActivateFromZero"
    SCALE_UP_STABILIZED = "ScaleUpStabilized"
    SCALE_DOWN_STABILIZED = "ScaleDownStabilized"
    SCALE_UP_LIMIT = "ScaleUpLimit"
    SCALE_DOWN_LIMIT = "ScaleDownLimit"
    TOO_MANY_REPLICAS = "TooManyReplicas"
    TOO_FEW_REPLICAS = "TooFewReplicas"


@dataclass(frozen=True)
class Decision:
    """Replicas to ask of the Deployment, the reason, a human message, and history to keep.

    `recommendation` is the unstabilized count the metrics asked for, before windows and
    rate rules: useful for metrics and debugging.
    """

    replicas: int
    reason: DecisionReason
    message: str
    history: ScalingHistory
    recommendation: int
