"""lmscale's policy on a mixed fleet: the operator's fleet cycle, on simulated pods.

Each cycle does what `scaler.cycle` does for a resource with fallbacks, through the same
pure functions: the replicas of every type as the operator's pod summaries
(`controller.pods.PodInfo`: a pending replica is one the scheduler refuses, since it was
created), the observation in units of primary capacity (`scaler.variants`), `decide`,
and `policy.fleet.split` over the types. The availability limits are not given to the
policy: it learns them as the operator does, from pods left unschedulable.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from lmscale import policy
from lmscale.controller.pods import PodInfo
from lmscale.policy import fleet as fleet_policy
from lmscale.scaler import variants
from lmscale.sim.cluster import Cluster, Fleet, Replica
from lmscale.sim.observe import ClusterView
from lmscale.sim.scaler import LmscaleScaler

UNSCHEDULABLE = "0/1 nodes are available: Insufficient nvidia.com/gpu."


class LmscaleFleetScaler:
    """`decide` in units of primary capacity, spread over the types by `fleet.split`."""

    least_loaded_first = True

    def __init__(self, spec: policy.ScalingPolicySpec, members: Sequence[variants.Member], *,
                 strategy: fleet_policy.Strategy = fleet_policy.Strategy.ORDERED,
                 fallback_after_seconds: float = 60.0, period_seconds: float = 10.0) -> None:
        self.name = "lmscale"
        self.spec, self.members = spec, list(members)
        self.strategy, self.fallback_after = strategy, fallback_after_seconds
        self.period_seconds = period_seconds
        self.history = policy.ScalingHistory()
        self.splits: list[fleet_policy.Split] = []
        self._pods = LmscaleScaler(spec, period_seconds=period_seconds)

    def desired_fleet(self, view: ClusterView, fleet: Fleet) -> tuple[int, ...]:
        now = _time(view.now)
        pods = [pod for member, pool in zip(self.members, fleet.pools, strict=True)
                for pod in pod_infos(member, pool)]
        seen = [variants.variant(m, replicas=pool.size, pods=pods, now=now)
                for m, pool in zip(self.members, fleet.pools, strict=True)]
        units = variants.unit_observation(self._pods.observation(view), self.members, seen,
                                          pods, now, fallback_after_seconds=self.fallback_after)
        decision = policy.decide(self.spec, units, self.history, now=view.now)
        self.history = decision.history
        split = fleet_policy.split(seen, decision.replicas, strategy=self.strategy,
                                   fallback_after_seconds=self.fallback_after)
        if split.replicas != tuple(seen_v.replicas for seen_v in seen):
            self.splits.append(split)
        return split.replicas


def pod_infos(member: variants.Member, pool: Cluster) -> list[PodInfo]:
    """The pool's pods as the operator summarises them (draining ones are terminating)."""
    def pod(replica: Replica, *, ready: bool, terminating: bool = False) -> PodInfo:
        return PodInfo("sim", f"{member.deployment}-{replica.id}", _time(replica.created_at),
                       ready, _time(replica.ready_at) if ready else None, terminating, None,
                       False, None, variant=member.variant)

    pending = [PodInfo("sim", f"{member.deployment}-pending-{i}", _time(t), False, None, False,
                       UNSCHEDULABLE, False, None, variant=member.variant,
                       unschedulable_since=_time(t))
               for i, t in enumerate(pool.pending)]
    return [*(pod(r, ready=True) for r in pool.serving),
            *(pod(r, ready=False) for r in pool.starting),
            *(pod(r, ready=False, terminating=True) for r in pool.draining),
            *pending]


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
