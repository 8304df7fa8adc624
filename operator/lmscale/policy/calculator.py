"""The unstabilized recommendation: load against target, with the HPA's conservative rules.

Pure arithmetic in the style of the HPA's replica_calculator.go: a ratio of load to target
over the pods that reported, a tolerance band, missing pods counted against the direction
of change, unready pods never pushing a scale-up, and never moving against the ratio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lmscale.policy import loadcurve
from lmscale.policy.decision import DecisionReason
from lmscale.policy.observation import Observation
from lmscale.policy.spec import ScalingPolicySpec

# Guard against 8.000000001 becoming 9 replicas, and 44/40 falling outside a 10% band.
_EPSILON = 1e-9


@dataclass(frozen=True)
class Proposal:
    """A recommended replica count and why."""

    replicas: int
    reason: DecisionReason
    message: str


def ceil(value: float) -> int:
    """Ceiling that ignores floating-point dust."""
    return max(0, math.ceil(value - _EPSILON))


def within(ratio: float, tolerance: float) -> bool:
    """Inside the tolerance band around target, boundary included."""
    return abs(1 - ratio) <= tolerance + _EPSILON


def describe_load(observation: Observation, spec: ScalingPolicySpec, load: float) -> str:
    """'42 in-flight requests (12 waiting) on 3 ready replicas, target 8 per replica'."""
    waiting = observation.waiting or 0
    starting = observation.starting_replicas
    extra = f" ({starting} starting)" if starting else ""
    return (
        f"{load:g} in-flight requests ({waiting:g} waiting) on {observation.ready_replicas} "
        f"ready replicas{extra}, target {spec.target_per_replica:g} per replica"
    )


def guarded_load(observation: Observation, waiting_cap: float | None) -> float:
    """In-flight load, with waiting requests capped by the cold-start guard."""
    waiting = observation.waiting or 0.0
    if waiting_cap is not None:
        waiting = min(waiting, waiting_cap)
    return (observation.running or 0.0) + waiting


def from_load(
    spec: ScalingPolicySpec, observation: Observation, *, load: float, on_the_way: int
) -> Proposal:
    """HPA's calculation for an average-value target, with unready and missing pods."""
    current = observation.spec_replicas
    reporting = observation.reporting
    missing = observation.ready_replicas - reporting
    text = describe_load(observation, spec, load)
    if reporting == 0:
        if on_the_way > 0:
            return Proposal(
                current, DecisionReason.COLD_START_GUARD, f"no replica ready yet; {text}"
            )
        return Proposal(
            current, DecisionReason.MISSING_POD_METRICS, f"no ready replica reports; {text}"
        )
    # Usage and target per pod: in-flight requests, or the rates they imply (loadcurve).
    usage, unit = _usage(spec, load / reporting)
    ratio = usage / unit
    up_with_unready = on_the_way > 0 and ratio > 1
    if not up_with_unready and missing == 0:
        if within(ratio, spec.tolerance):
            return Proposal(current, DecisionReason.WITHIN_TOLERANCE, f"{text}: within tolerance")
        wanted = ceil(ratio * reporting)
        reason = DecisionReason.LOAD_ABOVE_TARGET if ratio > 1 else DecisionReason.LOAD_BELOW_TARGET
        return Proposal(wanted, reason, f"{text}: {wanted} wanted")
    adjusted, pods = usage * reporting, reporting
    if missing > 0:
        # Missing pods count as on target when shrinking and as idle when growing.
        adjusted += missing * unit if ratio < 1 else 0.0
        pods += missing
    if up_with_unready:
        pods += on_the_way  # starting replicas count as capacity on the way, carrying nothing
    hold_reason = (
        DecisionReason.COLD_START_GUARD if up_with_unready else DecisionReason.MISSING_POD_METRICS
    )
    new_ratio = adjusted / (pods * unit)
    flips = (ratio < 1 < new_ratio) or (ratio > 1 > new_ratio)
    if within(new_ratio, spec.tolerance) or flips:
        return Proposal(current, hold_reason, f"{text}: held, capacity covers it")
    wanted = ceil(new_ratio * pods)
    if (new_ratio < 1 and wanted > current) or (new_ratio > 1 and wanted < current):
        return Proposal(current, hold_reason, f"{text}: held, never against the ratio")
    reason = DecisionReason.LOAD_ABOVE_TARGET if new_ratio > 1 else DecisionReason.LOAD_BELOW_TARGET
    return Proposal(wanted, reason, f"{text}: {wanted} wanted")


def _usage(spec: ScalingPolicySpec, per_replica: float) -> tuple[float, float]:
    """(usage, target) per pod: in requests/s through the load curve when the spec has one,
    else in in-flight requests, as the HPA sizes."""
    target = spec.target_per_replica
    if spec.load_curve:
        curve = spec.load_curve
        return loadcurve.rate_of(curve, per_replica), loadcurve.rate_of(curve, target)
    return per_replica, target


def lower_bound_load(observation: Observation) -> float | None:
    """In-flight requests we know of when one of waiting/running is missing."""
    known = [v for v in (observation.waiting, observation.running) if v is not None]
    return sum(known) if known else None
