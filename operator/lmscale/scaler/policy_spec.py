"""From a LanguageModelDeployment and its capacity plan to what the policy needs (pure).

The target per replica and the load curve come from the same calibration on the engine
model that the policy benchmark uses (`lmscale.sim.calibrate`), so what `make bench`
measures is what the operator runs. A calibration costs seconds of CPU, so it is computed
once per distinct (plan, objectives, token mix, tolerance) in the process and shared, on a
worker thread: the scaler asks without waiting (`calibration_ready`), so one new resource
never stalls the cycle that scales all the others.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

from lmscale.api.resource import LanguageModelDeployment
from lmscale.api.scaling import ScaleDownRules, ScaleUpRules
from lmscale.planner import performance
from lmscale.planner.plan import CapacityPlan
from lmscale.policy import (
    MissingMetricsMode,
    RuleType,
    ScalingDirection,
    ScalingPolicySpec,
    ScalingRule,
    SelectPolicy,
)
from lmscale.sim import calibrate
from lmscale.sim.results import Slo


def _direction(rules: ScaleUpRules | ScaleDownRules) -> ScalingDirection:
    return ScalingDirection(
        stabilization_window_seconds=rules.stabilization_window_seconds,
        select_policy=SelectPolicy(rules.select_policy.value),
        rules=tuple(ScalingRule(RuleType(p.type.value), p.value, p.period_seconds)
                    for p in rules.policies),
    )


_calibrations: dict[tuple[object, ...], Future[calibrate.Calibration]] = {}
_calibrations_lock = threading.Lock()
_calibrator = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lmscale-calibrate")


def _key(lmd: LanguageModelDeployment, plan: CapacityPlan) -> tuple[object, ...]:
    objective = lmd.spec.slo
    return (plan.model, plan.gpu, plan.dtype, plan.kv_cache_dtype, plan.context,
            plan.gpus_per_replica, plan.max_num_seqs, plan.max_num_batched_tokens,
            objective.ttft_p95_ms, objective.tpot_p95_ms, objective.mean_prompt_tokens,
            objective.mean_output_tokens, lmd.spec.scaling.tolerance)


def _calibrate(lmd: LanguageModelDeployment, plan: CapacityPlan) -> calibrate.Calibration:
    objective = lmd.spec.slo
    return calibrate.calibrate(
        performance.replica_performance(plan),
        calibrate.lengths_from_means(objective.mean_prompt_tokens, objective.mean_output_tokens),
        slo=Slo(ttft_seconds=objective.ttft_p95_ms / 1000.0,
                tpot_seconds=objective.tpot_p95_ms / 1000.0),
        tolerance=lmd.spec.scaling.tolerance,
    )


def _calibration(lmd: LanguageModelDeployment, plan: CapacityPlan
                 ) -> Future[calibrate.Calibration]:
    """The one computation for this key, started on first request."""
    key = _key(lmd, plan)
    with _calibrations_lock:
        if key not in _calibrations:
            _calibrations[key] = _calibrator.submit(_calibrate, lmd, plan)
        return _calibrations[key]


def calibration_ready(lmd: LanguageModelDeployment, plan: CapacityPlan) -> bool:
    """Whether `policy_spec` returns without waiting; starts the calibration if it must."""
    if lmd.spec.scaling.target_in_flight_per_replica is not None:
        return True  # the user's own target needs none
    return _calibration(lmd, plan).done()


def calibration(lmd: LanguageModelDeployment, plan: CapacityPlan) -> calibrate.Calibration:
    """What one replica carries while 99% of requests meet the SLO, for this token mix."""
    return _calibration(lmd, plan).result()


def used_calibration(lmd: LanguageModelDeployment, plan: CapacityPlan
                     ) -> calibrate.Calibration | None:
    """The calibration the policy sizes with; None when the user set the target."""
    if lmd.spec.scaling.target_in_flight_per_replica is not None:
        return None
    return calibration(lmd, plan)


def target_per_replica(lmd: LanguageModelDeployment, cal: calibrate.Calibration | None
                       ) -> float:
    """What one replica carries within the SLO: the user's number, else the target of
    `cal`, the calibration `used_calibration` looked up (passed in: one lookup a cycle)."""
    user = lmd.spec.scaling.target_in_flight_per_replica
    if user is not None:
        return float(user)
    if cal is None:
        raise ValueError("no target set by the user and no calibration given")
    return cal.target


def policy_spec(lmd: LanguageModelDeployment, plan: CapacityPlan) -> ScalingPolicySpec:
    """The resource's scaling settings, with the calibrated target unless the user set one."""
    scaling = lmd.spec.scaling
    missing = scaling.on_missing_metrics
    cal = used_calibration(lmd, plan)
    return ScalingPolicySpec(
        min_replicas=scaling.min_replicas,
        max_replicas=scaling.max_replicas,
        target_per_replica=target_per_replica(lmd, cal),
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
        # The measured in-flight-to-rate curve and prefill floor; a user's own target means
        # plain ratios and no floor.
        load_curve=cal.curve if cal else (),
        prompt_tokens_per_replica=cal.prompt_tokens_rate if cal else None,
    )
