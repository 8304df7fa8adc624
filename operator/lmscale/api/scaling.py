"""`spec.scaling`: the replica range and how fast to move inside it.

`behavior` mirrors autoscaling/v2 HorizontalPodAutoscalerBehavior field for field, with the
same defaults, so that people who know HPA know this.
"""

from __future__ import annotations

import enum

from pydantic import Field

from lmscale.api import schema
from lmscale.api.schema import Rule, StrictBool, StrictInt

MAX_REPLICAS = 1000


class PolicyType(enum.StrEnum):
    """How a scaling policy's value counts: absolute pods or percent of current replicas."""

    PODS = "Pods"
    PERCENT = "Percent"


class SelectPolicy(enum.StrEnum):
    """Which policy wins when several apply (HPA's selectPolicy)."""

    MAX = "Max"
    MIN = "Min"
    DISABLED = "Disabled"


class ScalingPolicy(schema.Schema):
    """At most `value` pods (or percent) of change within any `periodSeconds`."""

    type: PolicyType = Field(description="Pods (absolute) or Percent (of the current replicas).")
    value: StrictInt = Field(
        ge=1, le=10_000, description="Change allowed per period, in pods or percent."
    )
    period_seconds: StrictInt = Field(
        ge=1, le=1800, description="Window the value applies to, in seconds (1 to 1800)."
    )


class ScaleUpRules(schema.Schema):
    """Scale-up behaviour; defaults as HPA: no window, double or add 4 pods every 15 s."""

    stabilization_window_seconds: StrictInt = Field(
        default=0,
        ge=0,
        le=3600,
        description=(
            "Scale up only to the lowest recommendation of this many past seconds "
            "(0: act on the latest)."
        ),
    )
    select_policy: SelectPolicy = Field(
        default=SelectPolicy.MAX,
        description=(
            "Max: the policy allowing the most change wins; Min: the least; "
            "Disabled: never scale up."
        ),
    )
    policies: list[ScalingPolicy] = Field(
        default_factory=lambda: [
            ScalingPolicy(type=PolicyType.PERCENT, value=100, period_seconds=15),
            ScalingPolicy(type=PolicyType.PODS, value=4, period_seconds=15),
        ],
        min_length=1,
        max_length=10,
        description="Rate limits; default 100 percent and 4 pods per 15 s, the larger winning.",
    )


class ScaleDownRules(schema.Schema):
    """Scale-down behaviour; defaults as HPA: a 300 s window, then any number of pods per 15 s."""

    stabilization_window_seconds: StrictInt = Field(
        default=300,
        ge=0,
        le=3600,
        description=(
            "Scale down only to the highest recommendation of this many past seconds, so a "
            "brief lull does not drop replicas that take minutes to start again."
        ),
    )
    select_policy: SelectPolicy = Field(
        default=SelectPolicy.MAX,
        description=(
            "Max: the policy allowing the most change wins; Min: the least; "
            "Disabled: never scale down."
        ),
    )
    policies: list[ScalingPolicy] = Field(
        default_factory=lambda: [
            ScalingPolicy(type=PolicyType.PERCENT, value=100, period_seconds=15)
        ],
        min_length=1,
        max_length=10,
        description="Rate limits; default 100 percent per 15 s.",
    )


class Behavior(schema.Schema):
    """Scale-up and scale-down windows and rates, as autoscaling/v2 HPA behavior."""

    scale_up: ScaleUpRules = Field(
        default_factory=ScaleUpRules, description="How fast to add replicas."
    )
    scale_down: ScaleDownRules = Field(
        default_factory=ScaleDownRules, description="How fast to remove replicas."
    )


class MissingMetricsAction(enum.StrEnum):
    """What to do in a cycle whose metrics are missing or stale."""

    HOLD = "hold"
    SCALE_UP_ONLY = "scaleUpOnly"
    FALLBACK = "fallback"


class OnMissingMetrics(schema.Schema):
    """What to do when Prometheus has no fresh data; never scale down on data you do not have."""

    action: MissingMetricsAction = Field(
        default=MissingMetricsAction.HOLD,
        description=(
            "hold: keep the current replicas; scaleUpOnly: act on the metrics that are present "
            "but never scale down; fallback: go to fallbackReplicas."
        ),
    )
    fallback_replicas: StrictInt | None = Field(
        default=None,
        ge=1,
        le=MAX_REPLICAS,
        description=(
            "Replicas to run while metrics are missing; required with action fallback, "
            "between minReplicas and maxReplicas."
        ),
    )

    rules = (
        Rule(
            cel="self.action != 'fallback' || has(self.fallbackReplicas)",
            message=(
                "scaling.onMissingMetrics.fallbackReplicas is required when action is fallback"
            ),
            check=lambda o: (
                o.action is not MissingMetricsAction.FALLBACK or o.fallback_replicas is not None
            ),
            field=".fallbackReplicas",
            reason="FieldValueRequired",
        ),
        Rule(
            cel="!has(self.fallbackReplicas) || self.action == 'fallback'",
            message=(
                "scaling.onMissingMetrics.fallbackReplicas is used only with action fallback; "
                "set action: fallback or remove it"
            ),
            check=lambda o: (
                o.fallback_replicas is None or o.action is MissingMetricsAction.FALLBACK
            ),
            field=".fallbackReplicas",
            reason="FieldValueForbidden",
        ),
    )


class ScaleToZero(schema.Schema):
    """Release every GPU after an idle window; the next request then waits for a cold start."""

    enabled: StrictBool = Field(
        default=False,
        description=(
            "Scale to zero replicas after idleSeconds without requests. Off by default: the "
            "first request after that waits minutes for a replica to load the model."
        ),
    )
    idle_seconds: StrictInt = Field(
        default=900,
        ge=60,
        le=604_800,
        description="Seconds with no waiting or running requests before scaling to zero.",
    )


class Scaling(schema.Schema):
    """Horizontal autoscaling of the replicas from queue depth, latency and GPU utilisation."""

    enabled: StrictBool = Field(
        default=True,
        description=(
            "Let lmscale scale the replicas. When false, spec.replicas sets them "
            "(so kubectl scale, an HPA or KEDA can drive the model instead)."
        ),
    )
    min_replicas: StrictInt = Field(
        default=1, ge=1, le=MAX_REPLICAS, description="Fewest replicas while scaling."
    )
    max_replicas: StrictInt = Field(
        default=4,
        ge=1,
        le=MAX_REPLICAS,
        description="Most replicas while scaling; bounds the GPUs this model can take.",
    )
    target_in_flight_per_replica: float | None = Field(
        default=None,
        gt=0,
        le=100_000,
        description=(
            "In-flight requests (running plus waiting) one replica should carry. Default: "
            "derived from the capacity plan and the SLO (what a replica carries with TTFT "
            "p95 within slo.ttftP95Ms). Set it to override that estimate."
        ),
    )
    gpu_utilization_target: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description=(
            "Mean GPU utilisation (0-1) above which to add replicas. A secondary signal only: "
            "DCGM reads near 1 whenever any kernel runs. Default: not used."
        ),
    )
    tolerance: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Ignore load within this fraction of the target (HPA's 10 percent band).",
    )
    behavior: Behavior = Field(
        default_factory=Behavior,
        description="Scale-up and scale-down windows and rates, as autoscaling/v2 HPA behavior.",
    )
    on_missing_metrics: OnMissingMetrics = Field(
        default_factory=OnMissingMetrics,
        description="What to do while metrics are missing or stale. Default: hold.",
    )
    scale_to_zero: ScaleToZero = Field(
        default_factory=ScaleToZero,
        description="Scale to zero after an idle window. Off by default.",
    )

    rules = (
        Rule(
            cel="self.minReplicas <= self.maxReplicas",
            message=(
                "scaling.minReplicas must not exceed scaling.maxReplicas; "
                "lower minReplicas or raise maxReplicas"
            ),
            check=lambda s: s.min_replicas <= s.max_replicas,
            field=".minReplicas",
        ),
        Rule(
            cel=(
                "!has(self.onMissingMetrics) || !has(self.onMissingMetrics.fallbackReplicas) || "
                "(self.onMissingMetrics.fallbackReplicas >= self.minReplicas && "
                "self.onMissingMetrics.fallbackReplicas <= self.maxReplicas)"
            ),
            message=(
                "scaling.onMissingMetrics.fallbackReplicas must lie between "
                "scaling.minReplicas and scaling.maxReplicas"
            ),
            check=lambda s: (
                s.on_missing_metrics.fallback_replicas is None
                or s.min_replicas <= s.on_missing_metrics.fallback_replicas <= s.max_replicas
            ),
            field=".onMissingMetrics.fallbackReplicas",
        ),
    )
