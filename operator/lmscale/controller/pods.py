"""A pod reduced to what the operator decides on: readiness, age, scheduling, failures."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
VARIANT_LABEL = "lmscale.dev/variant"
# What one pod carries at the SLO (its GPU type's calibrated target, in requests in flight),
# written by the scaler on a mixed fleet's pods: a router's weight for the pod.
CAPACITY_ANNOTATION = "lmscale.dev/capacity"


@dataclasses.dataclass(frozen=True)
class PodInfo:
    namespace: str
    name: str
    created: datetime | None
    ready: bool
    ready_since: datetime | None
    terminating: bool
    unschedulable_message: str | None  # the scheduler's reason, while it cannot place the pod
    crash_looping: bool
    deletion_cost: int | None
    # A fallback GPU type's pod: its type (the variant label); None for the primary's.
    variant: str | None = None
    # Since when the scheduler has refused it (PodScheduled=False, Unschedulable).
    unschedulable_since: datetime | None = None
    ip: str | None = None  # status.podIP: what an EndpointSlice of the model points at
    capacity: str | None = None  # its CAPACITY_ANNOTATION, as written


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _condition(status: Mapping[str, Any], type_: str) -> Mapping[str, Any]:
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), {})


def summarize(body: Mapping[str, Any]) -> PodInfo:
    meta, status = body.get("metadata", {}), body.get("status") or {}
    ready = _condition(status, "Ready")
    scheduled = _condition(status, "PodScheduled")
    unschedulable = (scheduled.get("status") == "False"
                     and scheduled.get("reason") == "Unschedulable")
    waiting_reasons = {
        (s.get("state") or {}).get("waiting", {}).get("reason")
        for s in status.get("containerStatuses") or []
    }
    notes = meta.get("annotations") or {}
    cost = notes.get(DELETION_COST)
    return PodInfo(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        created=_time(meta.get("creationTimestamp")),
        ready=ready.get("status") == "True",
        ready_since=_time(ready.get("lastTransitionTime")) if ready.get("status") == "True"
        else None,
        terminating=meta.get("deletionTimestamp") is not None,
        unschedulable_message=str(scheduled.get("message", "")) if unschedulable else None,
        crash_looping=bool(waiting_reasons & {"CrashLoopBackOff", "ImagePullBackOff",
                                               "ErrImagePull", "CreateContainerConfigError"}),
        deletion_cost=int(cost) if cost is not None and cost.lstrip("-").isdigit() else None,
        variant=(meta.get("labels") or {}).get(VARIANT_LABEL),
        unschedulable_since=(_time(scheduled.get("lastTransitionTime"))
                             or _time(meta.get("creationTimestamp"))) if unschedulable
        else None,
        ip=status.get("podIP") or None,
        capacity=notes.get(CAPACITY_ANNOTATION),
    )
