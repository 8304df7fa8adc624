"""A mixed fleet as the policy sees it: one `fleet.Variant` per GPU type, and the cycle's
Observation in units of primary-replica capacity (pure).

The policy (`decide`) sizes in replicas of the primary type; with fallbacks a replica of
another type counts its weight, so the counts it reads (ready, starting, reporting) are
turned into units here, and the units it returns are spread by `policy.fleet.split`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from lmscale.api import LanguageModelDeployment
from lmscale.controller.pods import PodInfo
from lmscale.planner.plan import CapacityPlan
from lmscale.policy import Observation, fleet
from lmscale.render import meta


@dataclasses.dataclass(frozen=True)
class Member:
    """One GPU type of the fleet: its Deployment's name, its plan and its weight."""

    gpu_type: str
    deployment: str
    variant: str | None  # the pods' variant label; None for the primary
    plan: CapacityPlan
    weight: float
    max_replicas: int


def members(lmd: LanguageModelDeployment, plan: CapacityPlan,
            fallback_plans: Sequence[CapacityPlan], weights: Sequence[float]) -> list[Member]:
    scaling = lmd.spec.scaling
    out = [Member(lmd.spec.accelerator.type, lmd.name, None, plan, weights[0],
                  scaling.max_replicas)]
    for entry, p, w in zip(lmd.spec.accelerator.fallbacks, fallback_plans, weights[1:],
                           strict=True):
        limit = scaling.max_replicas if entry.max_replicas is None else entry.max_replicas
        out.append(Member(entry.type, meta.variant_name(lmd.name, entry.type), entry.type,
                          p, w, limit))
    return out


def replicas_of(member: Member, primary: Mapping[str, Any] | None,
                fallbacks: Mapping[str, Mapping[str, Any]]) -> int:
    """What the member's Deployment asks for now (0 before it exists)."""
    record = primary if member.variant is None else fallbacks.get(member.variant)
    return int(((record or {}).get("spec") or {}).get("replicas") or 0)


def _live(pods: Sequence[PodInfo], member: Member) -> list[PodInfo]:
    return [p for p in pods if p.variant == member.variant and not p.terminating]


def variant(member: Member, *, replicas: int, pods: Sequence[PodInfo], now: datetime
            ) -> fleet.Variant:
    live = _live(pods, member)
    refused = [p for p in live if p.unschedulable_message is not None]
    oldest = min((p.unschedulable_since for p in refused if p.unschedulable_since),
                 default=None)
    return fleet.Variant(
        key=member.gpu_type, weight=member.weight, cost_per_hour=member.plan.cost_per_hour,
        max_replicas=member.max_replicas, replicas=replicas,
        ready=sum(1 for p in live if p.ready), unschedulable=len(refused),
        unschedulable_seconds=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)


def _units(value: float) -> int:
    """Units as a whole count, rounded down, at least 1 when there is any capacity.

    Down, so that a fleet is never read as larger than it is: a count read up (4.5 units as
    5) would make "hold at the current size" add a primary replica each cycle.
    """
    whole = int(math.floor(value + 1e-9))
    return max(1, whole) if value > 1e-9 else 0


def unit_observation(seen: Observation, members_: Sequence[Member],
                     variants: Sequence[fleet.Variant], pods: Sequence[PodInfo],
                     now: datetime, *, fallback_after_seconds: float) -> Observation:
    """`seen` (counted in pods of every type) counted in units of primary capacity.

    Starting pods keep their ages, the youngest first, as many as their units; a pod the
    scheduler refuses is not starting (it is not coming), as for a single type.
    """
    weight = {m.variant: m.weight for m in members_}
    ready_pods = [p for p in pods if p.ready and not p.terminating]
    ready = fleet.ready_units(variants)
    ready_count = _units(ready) if ready_pods else 0
    starting = sorted(
        ((max(0.0, (now - p.created).total_seconds()) if p.created else 0.0,
          weight.get(p.variant, 1.0))
         for p in pods if not p.ready and not p.terminating and p.unschedulable_message is None),
        key=lambda item: item[0])
    starting_count = _units(sum(w for _, w in starting))
    reporting = seen.reporting_replicas
    if reporting is not None and ready_pods:
        reporting = min(ready_count, _units(reporting * ready / len(ready_pods)))
    # What the fleet asks for, except the refused pods of a starved type: its probe pod is
    # no capacity (else holding would hand the next type more each cycle), while a type
    # still waiting for the scheduler keeps its pods (else holding would delete them, and
    # the wait would start over every cycle).
    asked = fleet.units(variants, [
        v.placed if fleet.starved(v, fallback_after_seconds=fallback_after_seconds)
        else v.replicas for v in variants])
    return dataclasses.replace(
        seen,
        spec_replicas=_units(asked),
        ready_replicas=ready_count,
        starting_replicas=starting_count,
        starting_ages=tuple(starting[i % len(starting)][0] for i in range(starting_count)),
        reporting_replicas=reporting,
    )


def capacity_text(member: Member, primary_target: float) -> str:
    """`lmscale.dev/capacity` for the member's pods: its type's target, in flight per replica
    (the primary's target times the member's weight), to two decimals."""
    return f"{member.weight * primary_target:.2f}"


def capacity_marks(pods: Sequence[PodInfo], members_: Sequence[Member],
                   primary_target: float) -> dict[str, str]:
    """The pods whose `lmscale.dev/capacity` is missing or stale, and what it should read.

    A router weighs a mixed fleet's pods by it (Envoy's weighted least-request, the
    activator's pick), so a slower type's pod gets its share of the load, not a fast pod's.
    Annotating the pods rather than the pod template keeps a new calibration (an SLO
    changed) from rolling every replica through a cold start. Pods being deleted and pods
    of no member are left alone.
    """
    wanted = {m.variant: capacity_text(m, primary_target) for m in members_}
    return {p.name: wanted[p.variant] for p in pods
            if not p.terminating and p.variant in wanted and p.capacity != wanted[p.variant]}


def hourly_cost(lmd: LanguageModelDeployment, plan: CapacityPlan,
                fallback_plans: Sequence[CapacityPlan], pods: Sequence[PodInfo]) -> float:
    """The catalog price of an hour of the placed pods of every type (an unschedulable pod
    runs nowhere and costs nothing)."""
    price: dict[str | None, float] = {None: plan.cost_per_hour}
    price.update({f.type: p.cost_per_hour
                  for f, p in zip(lmd.spec.accelerator.fallbacks, fallback_plans, strict=True)})
    return sum(price.get(p.variant, 0.0) for p in pods
               if not p.terminating and p.unschedulable_message is None)


def fleet_status(members_: Sequence[Member], variants: Sequence[fleet.Variant],
                 split: fleet.Split, *, cost_per_hour: float) -> dict[str, Any]:
    """`status.fleet`: each type's Deployment, replicas and weight, and the cost."""
    in_use = [f"{v.key}={n}" for v, n in zip(variants, split.replicas, strict=True) if n]
    return {
        "types": ",".join(in_use) or "none",
        "costPerHour": round(cost_per_hour, 4),
        "message": split.message,
        "variants": [
            {"type": m.gpu_type, "deployment": m.deployment, "replicas": n,
             "readyReplicas": v.ready, "unschedulableReplicas": v.unschedulable,
             "unitsPerReplica": round(m.weight, 4), "starved": v.key in split.starved}
            for m, v, n in zip(members_, variants, split.replicas, strict=True)],
    }
