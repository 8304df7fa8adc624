"""Conditions from what the Deployment and its pods show (pure: `now` comes in)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from lmscale.api import LanguageModelDeploymentSpec
from lmscale.api.status import Condition, ConditionReason, ConditionStatus, ConditionType
from lmscale.controller.pods import PodInfo

R = ConditionReason


@dataclasses.dataclass(frozen=True)
class Workload:
    """The observed children of one LanguageModelDeployment."""

    generation: int
    desired_replicas: int
    deployment: Mapping[str, Any] | None
    pods: Sequence[PodInfo]
    # Ready replicas that make the model available (see `minimum_available`); None: all.
    minimum_available: int | None = None

    @property
    def replicas(self) -> int:
        return sum(1 for p in self.pods if not p.terminating)

    @property
    def ready_replicas(self) -> int:
        return sum(1 for p in self.pods if p.ready and not p.terminating)


def condition(type_: ConditionType, ok: bool | None, reason: str, message: str, *,
              now: datetime, generation: int) -> Condition:
    """`ok` None is status Unknown; `reason` is a member of one of the reason enums."""
    status = (ConditionStatus.UNKNOWN if ok is None
              else ConditionStatus.TRUE if ok else ConditionStatus.FALSE)
    return Condition(type=type_, status=status, reason=str(reason), message=message,
                     last_transition_time=now, observed_generation=generation)


def metrics_from_activator(*, spec_replicas: int, ready_replicas: int, held: float | None,
                           arrivals_per_second: float | None, now: datetime,
                           generation: int) -> Condition | None:
    """MetricsAvailable while no replica is Ready and the activator reports the model.

    No engine can export series then, so their absence is expected, not missing: the
    activator's held requests are the load (the policy reads them so, `Observation.load`).
    Saying MetricsMissing there would make every model idling at zero alert. None when it
    does not apply (a Ready replica, or the activator silent too: then the engines'
    availability stands, and the missing-metrics policy with it).
    """
    if ready_replicas > 0 or held is None:
        return None
    rate = f", {arrivals_per_second:.2f} requests/s arriving" if arrivals_per_second else ""
    state = ("scaled to zero" if spec_replicas == 0
             else f"no replica Ready yet ({spec_replicas} asked)")
    return condition(ConditionType.METRICS_AVAILABLE, True, R.ACTIVATOR_REPORTING,
                     f"{state}: no engine series expected; the activator reports the load "
                     f"({held:g} requests held{rate})", now=now, generation=generation)


def minimum_available(spec: LanguageModelDeploymentSpec | None, desired: int) -> int:
    """Ready replicas with which the model counts as available, as a Deployment's
    `Available` condition counts `replicas - maxUnavailable`.

    Under autoscaling the floor is `scaling.minReplicas`: replicas above it are capacity
    the autoscaler adds for load, and a model serving while they load is available (Ready
    stays True while it scales, and Progressing says so). With replicas set by hand the
    floor is what the PodDisruptionBudget keeps: all but one. At least one whenever any is
    desired, never more than desired.
    """
    if desired <= 0:
        return 0
    if spec is None:
        floor = desired
    elif spec.scaling.enabled:
        floor = spec.scaling.min_replicas
    else:
        floor = desired - 1
    return max(1, min(desired, floor))


def _minimum(w: Workload) -> int:
    if w.minimum_available is None:
        return w.desired_replicas
    return max(1, min(w.desired_replicas, w.minimum_available))


def ready(w: Workload, *, now: datetime) -> Condition:
    if w.deployment is None:
        # Not created yet (or not yet seen): nothing can be said about replicas.
        return condition(ConditionType.READY, None, R.DEPLOYMENT_PENDING,
                         "waiting for the Deployment", now=now, generation=w.generation)
    if w.desired_replicas == 0:
        return condition(ConditionType.READY, True, R.SCALED_TO_ZERO,
                         "scaled to zero; the first request waits for a cold start",
                         now=now, generation=w.generation)
    minimum = _minimum(w)
    ok = w.ready_replicas >= minimum
    return condition(
        ConditionType.READY, ok, R.AVAILABLE if ok else R.REPLICAS_NOT_READY,
        f"{w.ready_replicas}/{w.desired_replicas} replicas ready"
        + (f" (available from {minimum})" if w.ready_replicas < w.desired_replicas
           and minimum < w.desired_replicas else ""),
        now=now, generation=w.generation)


def _deployment_condition(w: Workload, type_: str) -> Mapping[str, Any]:
    status = (w.deployment or {}).get("status") or {}
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), {})


def progressing(w: Workload, *, now: datetime) -> Condition:
    status = (w.deployment or {}).get("status") or {}
    meta = (w.deployment or {}).get("metadata") or {}
    stalled = _deployment_condition(w, "Progressing")
    if stalled.get("reason") == "ProgressDeadlineExceeded":
        return condition(ConditionType.PROGRESSING, False, R.PROGRESS_DEADLINE_EXCEEDED,
                         str(stalled.get("message", "")), now=now, generation=w.generation)
    rolling = (
        w.deployment is None
        or status.get("observedGeneration", 0) < meta.get("generation", 0)
        or status.get("updatedReplicas", 0) < (w.deployment.get("spec") or {}).get("replicas", 0)
    )
    if rolling:
        return condition(ConditionType.PROGRESSING, True, R.ROLLING_OUT,
                         "rolling out the new replica template", now=now, generation=w.generation)
    if w.replicas != w.desired_replicas or w.ready_replicas != w.desired_replicas:
        return condition(ConditionType.PROGRESSING, True, R.SCALING,
                         f"scaling to {w.desired_replicas} replicas "
                         f"({w.ready_replicas} ready of {w.replicas})",
                         now=now, generation=w.generation)
    return condition(ConditionType.PROGRESSING, False, R.RECONCILED,
                     f"{w.desired_replicas} replicas up to date", now=now,
                     generation=w.generation)


def degraded(w: Workload, *, now: datetime) -> Condition:
    stalled = _deployment_condition(w, "Progressing")
    if (stalled.get("reason") == "ProgressDeadlineExceeded" and w.desired_replicas > 0
            and w.ready_replicas < _minimum(w)):
        # Not serving, and past the time a replica may take to load the model.
        detail = str(stalled.get("message") or "")
        return condition(ConditionType.DEGRADED, True, R.PROGRESS_DEADLINE_EXCEEDED,
                         f"{w.ready_replicas}/{w.desired_replicas} replicas ready past the "
                         f"progress deadline" + (f": {detail}" if detail else ""),
                         now=now, generation=w.generation)
    looping = [p.name for p in w.pods if p.crash_looping]
    if looping:
        return condition(ConditionType.DEGRADED, True, R.CRASH_LOOPING,
                         f"pods failing to start: {', '.join(sorted(looping)[:5])}",
                         now=now, generation=w.generation)
    failure = _deployment_condition(w, "ReplicaFailure")
    if failure.get("status") == "True":
        return condition(ConditionType.DEGRADED, True, R.REPLICAS_FAILING,
                         str(failure.get("message", "")), now=now, generation=w.generation)
    return condition(ConditionType.DEGRADED, False, R.AS_EXPECTED, "no failing replicas",
                     now=now, generation=w.generation)


def schedulable(w: Workload, *, now: datetime) -> Condition:
    stuck = sorted((p for p in w.pods if p.unschedulable_message), key=lambda p: p.name)
    if stuck:
        first = stuck[0]
        return condition(
            ConditionType.SCHEDULABLE, False, R.UNSCHEDULABLE,
            f"{len(stuck)} pod(s) pending; {first.name}: {first.unschedulable_message}",
            now=now, generation=w.generation)
    return condition(ConditionType.SCHEDULABLE, True, R.SCHEDULED,
                     "every replica has a node with the GPU type", now=now,
                     generation=w.generation)


def workload_conditions(w: Workload, *, now: datetime) -> list[Condition]:
    return [ready(w, now=now), progressing(w, now=now), degraded(w, now=now),
            schedulable(w, now=now)]
