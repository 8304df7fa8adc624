"""From a LanguageModelDeployment and its capacity plan to what the policy needs (pure)."""

from __future__ import annotations

from lmscale.api.resource import LanguageModelDeployment
from lmscale.api.scaling import ScaleDownRules, ScaleUpRules
from lmscale.planner import performance, slo
from lmscale.planner.plan import CapacityPlan
from lmscale.policy import (
    MissingMetricsMode,
    RuleType,
    ScalingDirection,
    ScalingPolicySpec,
    ScalingRule,
    SelectPolicy,
)


def _direction(rules: ScaleUpRules | ScaleDownRules) -> ScalingDirection:
    return ScalingDirection(
        stabilization_window_seconds=rules.stabilization_window_seconds,
        select_policy=SelectPolicy(rules.select_policy.value),
        rules=tuple(ScalingRule(RuleType(p.type.value), p.value, p.period_seconds)
                    for p in rules.policies),
    )


def target_per_replica(lmd: LanguageModelDeployment, plan: CapacityPlan) -> float:
    """What one replica carries within the SLO: the user's number, else the planner's."""
    scaling, objective = lmd.spec.scaling, lmd.spec.slo
    if scaling.target_in_flight_per_replica is not None:
        return float(scaling.target_in_flight_per_replica)
    return slo.target_concurrency(
        performance.replica_performance(plan),
        ttft_p95_s=objective.ttft_p95_ms / 1000.0,
        tpot_p95_s=objective.tpot_p95_ms / 1000.0,
        mean_prompt_tokens=objective.mean_prompt_tokens,
        mean_output_tokens=objective.mean_output_tokens,
    )


def policy_spec(lmd: LanguageModelDeployment, plan: CapacityPlan) -> ScalingPolicySpec:
    scaling = lmd.spec.scaling
    missing = scaling.on_missing_metrics
    return ScalingPolicySpec(
        min_replicas=scaling.min_replicas,
        max_replicas=scaling.max_replicas,
        target_per_replica=target_per_replica(lmd, plan),
        ttft_p95_target_seconds=lmd.spec.slo.ttft_p95_ms / 1000.0,
        gpu_utilization_target=scaling.gpu_utilization_target,
        tolerance=scaling.tolerance,
        scale_up=_direction(scaling.behavior.scale_up),
        scale_down=_direction(scaling.behavior.scale_down),
        on_missing_metrics=MissingMetricsMode(missing.action.value),
        fallback_replicas=missing.fallback_replicas,
        scale_to_zero=scaling.scale_to_zero.enabled,
        idle_seconds=float(scaling.scale_to_zero.idle_seconds),
        startup_seconds=max(1.0, float(plan.storage.cold_start_seconds)),
    )
