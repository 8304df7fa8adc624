"""From a LanguageModelDeployment and its capacity plan to what the policy needs (pure).

The target per replica and the load curve come from the same calibration on the engine
model that the policy benchmark uses (`lmscale.sim.calibrate`), so what `make bench`
measures is what the operator runs. A calibration costs about a second of CPU, so it is
computed once per distinct (plan, objectives, token mix, tolerance) in the process and
shared, on the planner's background worker (`auto.calibration_started`, with the candidates
of `gpusPerReplica: auto` choices): the scaler asks without waiting (`calibration_ready`), so one
new resource never stalls the cycle that scales all the others. Each result is also kept
in the resource's status with a hash of its inputs (`to_status`); a restarted or newly
elected operator adopts it (`adopt`) instead of computing it again.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from lmscale.api import semantic
from lmscale.api.resource import LanguageModelDeployment
from lmscale.api.scaling import ScaleDownRules, ScaleUpRules
from lmscale.planner import auto, performance
from lmscale.planner.plan import CapacityPlan
from lmscale.policy import (
    MissingMetricsMode,
    RuleType,
    ScalingDirection,
    ScalingPolicySpec,
    ScalingRule,
    SelectPolicy,
)
from lmscale.render import activation
from lmscale.sim import calibrate


def _direction(rules: ScaleUpRules | ScaleDownRules) -> ScalingDirection:
    return ScalingDirection(
        stabilization_window_seconds=rules.stabilization_window_seconds,
        select_policy=SelectPolicy(rules.select_policy.value),
        rules=tuple(ScalingRule(RuleType(p.type.value), p.value, p.period_seconds)
                    for p in rules.policies),
    )


log = logging.getLogger(__name__)
_calibrations: dict[tuple[object, ...], Future[calibrate.Calibration]] = {}
_calibrations_lock = threading.Lock()
# Told of each calibration the policy takes: "computed" or "persisted". The operator counts
# them in its metrics (and the CPU of each computation through `auto.observe`).
Observer = Callable[[str], None]
_observers: list[Observer] = []
# Bump when the calibration method changes: results persisted by an older one recompute.
METHOD = "engine-model-4"  # 4: candidates from a power law of the loss, judged on one rule


def observe(observer: Observer) -> None:
    _observers.append(observer)


def _tell(source: str) -> None:
    for observer in _observers:
        observer(source)


def _key(lmd: LanguageModelDeployment, plan: CapacityPlan) -> tuple[object, ...]:
    objective = lmd.spec.slo
    return (plan.model, plan.gpu, plan.dtype, plan.kv_cache_dtype, plan.context,
            plan.gpus_per_replica, plan.max_num_seqs, plan.max_num_batched_tokens,
            objective.ttft_p95_ms, objective.tpot_p95_ms, objective.mean_prompt_tokens,
            objective.mean_output_tokens, lmd.spec.scaling.tolerance)


def inputs_hash(lmd: LanguageModelDeployment, plan: CapacityPlan) -> str:
    """What a persisted calibration was computed from, and by which method."""
    text = repr((METHOD, _key(lmd, plan)))
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def _computed(plan: CapacityPlan, future: Future[calibrate.Calibration]) -> None:
    if future.exception() is not None:
        return
    log.info("calibrated %s on %s x %s: %.2f in flight per replica",
             plan.model.key, plan.gpus_per_replica, plan.gpu.key, future.result().target)
    _tell("computed")


def to_status(cal: calibrate.Calibration, inputs: str) -> dict[str, Any]:
    """The calibration as `status.capacityPlan.autoscaling.calibration` keeps it: exact
    figures (JSON numbers round-trip) and the hash of what they were computed from."""
    return {"inputs": inputs, "target": cal.target, "rate": cal.rate, "ttftP95": cal.ttft_p95,
            "promptTokensRate": cal.prompt_tokens_rate,
            "curve": [[x, y] for x, y in cal.curve]}


def from_status(record: Mapping[str, Any] | None, inputs: str) -> calibrate.Calibration | None:
    """The persisted calibration when it was computed from `inputs`; None otherwise (or
    when it is malformed: then it is computed again)."""
    if not isinstance(record, Mapping) or record.get("inputs") != inputs:
        return None
    try:
        curve = tuple((float(x), float(y)) for x, y in record.get("curve") or ())
        prompt = record.get("promptTokensRate")
        found = calibrate.Calibration(
            float(record["target"]), float(record["rate"]), float(record["ttftP95"]), curve,
            prompt_tokens_rate=None if prompt is None else float(prompt))
    except (KeyError, TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in (found.target, found.rate)):
        return None
    return found


def adopt(lmd: LanguageModelDeployment, plan: CapacityPlan,
          record: Mapping[str, Any] | None, *, inputs: str | None = None) -> bool:
    """Take a persisted calibration for these inputs as computed; True when one is at hand
    (now or already: one still computing is not)."""
    key = _key(lmd, plan)
    with _calibrations_lock:
        if key in _calibrations:
            return _calibrations[key].done()
    found = from_status(record, inputs or inputs_hash(lmd, plan))
    if found is None:
        return False
    future: Future[calibrate.Calibration] = Future()
    future.set_result(found)
    with _calibrations_lock:
        if key in _calibrations:
            return _calibrations[key].done()
        _calibrations[key] = future
    _tell("persisted")
    return True


def _calibration(lmd: LanguageModelDeployment, plan: CapacityPlan
                 ) -> Future[calibrate.Calibration]:
    """The one computation for this key, started on first request."""
    key = _key(lmd, plan)
    with _calibrations_lock:
        if key in _calibrations:
            return _calibrations[key]
        # The one `gpusPerReplica: auto` chose with, when it did: computed once, shared.
        started = auto.calibration_started(performance.replica_performance(plan),
                                           semantic.workload(lmd.spec))
        _calibrations[key] = started
    started.add_done_callback(functools.partial(_computed, plan))
    return started


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


def policy_spec(lmd: LanguageModelDeployment, plan: CapacityPlan, *,
                activator: bool) -> ScalingPolicySpec:
    """The resource's scaling settings, with the calibrated target unless the user set one.

    `activator`: whether the chart installs one. Scale to zero needs it in front of the
    model's Service (`activation.fronted`): without it nothing holds the first request or
    wakes the model, so a model at zero would refuse requests for good; it stays at
    minReplicas instead (the reconciler says why, `desired.activator_warning`).
    """
    scaling = lmd.spec.scaling
    missing = scaling.on_missing_metrics
    cal = used_calibration(lmd, plan)
    return ScalingPolicySpec(
        min_replicas=scaling.min_replicas,
        max_replicas=scaling.max_replicas,
        target_per_replica=target_per_replica(lmd, cal),
        ttft_p95_target_seconds=lmd.spec.slo.ttft_p95_ms / 1000.0,
        tpot_p95_target_seconds=lmd.spec.slo.tpot_p95_ms / 1000.0,
        gpu_utilization_target=scaling.gpu_utilization_target,
        tolerance=scaling.tolerance,
        scale_up=_direction(scaling.behavior.scale_up),
        scale_down=_direction(scaling.behavior.scale_down),
        on_missing_metrics=MissingMetricsMode(missing.action.value),
        fallback_replicas=missing.fallback_replicas,
        scale_to_zero=(scaling.scale_to_zero.enabled
                       and activation.fronted(lmd, activator=activator)),
        idle_seconds=float(scaling.scale_to_zero.idle_seconds),
        startup_seconds=max(1.0, float(plan.storage.cold_start_seconds)),
        # The measured in-flight-to-rate curve and prefill floor; a user's own target means
        # plain ratios and no floor.
        load_curve=cal.curve if cal else (),
        prompt_tokens_per_replica=cal.prompt_tokens_rate if cal else None,
        # the activator's arrival counter is the whole rate only with it in every path
        front_door_counts_all=(activation.always(lmd)
                               and activation.fronted(lmd, activator=activator)),
    )


def autoscaling_summary(lmd: LanguageModelDeployment, plan: CapacityPlan, *,
                        inputs: str | None = None) -> dict[str, Any] | None:
    """What the autoscaler aims at per replica, published next to the capacity plan, with
    the calibration it came from (None while that is still being computed)."""
    if not lmd.spec.scaling.enabled:
        return None
    if not calibration_ready(lmd, plan):
        return None
    cal = used_calibration(lmd, plan)
    summary: dict[str, Any] = {
        "target_in_flight_per_replica": round(target_per_replica(lmd, cal), 2)}
    if cal is None:
        return summary | {"method": "scaling.targetInFlightPerReplica"}
    return summary | {"requests_per_second_per_replica": round(cal.rate, 3),
                      "prompt_tokens_per_second_per_replica": round(cal.prompt_tokens_rate or 0),
                      "ttft_p95_seconds_at_target": round(cal.ttft_p95, 4),
                      "method": "calibrated on the engine model for 99% of requests in the SLO",
                      "calibration": to_status(cal, inputs or inputs_hash(lmd, plan))}


def weights_ready(lmd: LanguageModelDeployment, plans: Sequence[CapacityPlan]) -> bool:
    """Whether every type's calibration is at hand (each starts if it must): the weights of
    a mixed fleet come from them, even when the user set the primary's target."""
    return all([_calibration(lmd, plan).done() for plan in plans])


def capacity_weights(lmd: LanguageModelDeployment, plan: CapacityPlan,
                     fallback_plans: Sequence[CapacityPlan]) -> list[float]:
    """What one replica of each type carries at the SLO, in replicas of the primary type:
    1 for the primary, then each fallback's calibrated target over the primary's."""
    primary = calibration(lmd, plan).target
    if primary <= 0:
        return [1.0] * (1 + len(fallback_plans))
    return [1.0, *(max(calibration(lmd, p).target, 1e-6) / primary for p in fallback_plans)]
