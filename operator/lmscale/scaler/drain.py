"""Which pods a scale-down should remove: the least loaded, so fewer generations are cut.

The ReplicaSet controller deletes pods with the lowest `pod-deletion-cost` first (after
unscheduled and unready ones), so the scaler sets the cost to each pod's in-flight requests
just before it lowers replicas (pure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lmscale.controller.pods import PodInfo


def deletion_costs(pods: Sequence[PodInfo], load: Mapping[str, float]) -> dict[str, int]:
    """pod name -> cost: its in-flight requests (unknown load counts as busy)."""
    busy = max(load.values(), default=0.0) + 1
    return {
        p.name: int(round(load.get(p.name, busy)))
        for p in pods
        if p.ready and not p.terminating
    }


def changed_costs(pods: Sequence[PodInfo], costs: Mapping[str, int]) -> dict[str, int]:
    """Only the annotations that differ from what the pods carry now."""
    current = {p.name: p.deletion_cost for p in pods}
    return {name: cost for name, cost in costs.items() if current.get(name) != cost}
