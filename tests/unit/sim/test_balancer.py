"""The simulator's balancers: least-requests, and least-requests weighted by capacity."""

from __future__ import annotations

from collections import Counter

import pytest

from lmscale.sim import simulator
from lmscale.sim.balancer import (
    BalancerKind,
    LeastRequests,
    WeightedLeastRequests,
    make_balancer,
)
from lmscale.sim.cluster import Cluster, Fleet, Replica
from lmscale.sim.engine import ReplicaEngine
from lmscale.sim.request import CompletedRequest, Request

from .fakes import LinearStep

# Requests that last: a decode step per sequence slows the batch, so some finish, some wait.
STEP = LinearStep(per_sequence=0.002)


def fleet(capacities: list[float]) -> list[Replica]:
    return [Replica(i, 0.0, 0.0, ReplicaEngine(STEP, ready_at=0.0), capacity=c)
            for i, c in enumerate(capacities)]


def route(balancer: WeightedLeastRequests | LeastRequests, replicas: list[Replica],
          requests: list[Request]) -> list[int]:
    done: list[CompletedRequest] = []
    picks = []
    for request in requests:
        replica = balancer.pick(replicas, request.arrival_s, done)
        done.extend(replica.engine.submit(request, request.arrival_s))
        picks.append(replica.id)
    return picks


def burst(count: int, *, every: float = 0.0) -> list[Request]:
    return [Request(i * every, 200 + 37 * (i % 5), 40 + 11 * (i % 7)) for i in range(count)]


@pytest.mark.parametrize("capacity", [1.0, 30.0, 7.3])
def test_on_replicas_of_one_capacity_it_picks_what_least_requests_picks(capacity: float) -> None:
    requests = burst(600, every=0.01)  # arrivals faster than completions, and completions
    weighted = route(WeightedLeastRequests(), fleet([capacity] * 5), requests)
    plain = route(LeastRequests(), fleet([capacity] * 5), requests)
    assert weighted == plain
    assert len(set(weighted)) == 5


def test_in_flight_follows_capacity() -> None:
    replicas = fleet([30.0, 10.0, 10.0])
    picks = Counter(route(WeightedLeastRequests(), replicas, burst(50)))  # none finish at t=0
    assert [picks[r.id] for r in replicas] == [30, 10, 10]
    assert [r.engine.in_flight for r in replicas] == [30, 10, 10]


def test_plain_least_requests_gives_a_slow_replica_a_fast_ones_share() -> None:
    replicas = fleet([30.0, 10.0, 10.0])
    picks = Counter(route(LeastRequests(), replicas, burst(51)))
    assert [picks[r.id] for r in replicas] == [17, 17, 17]


def test_an_idle_fleet_fills_its_largest_replica_first_and_ties_go_to_the_first() -> None:
    done: list[CompletedRequest] = []
    assert WeightedLeastRequests().pick(fleet([10.0, 30.0, 30.0]), 0.0, done).id == 1
    assert WeightedLeastRequests().pick(fleet([10.0, 10.0]), 0.0, done).id == 0


def test_the_kind_names_the_weighted_balancer() -> None:
    assert isinstance(make_balancer(BalancerKind.WEIGHTED_LEAST_REQUESTS), WeightedLeastRequests)
    assert isinstance(make_balancer(BalancerKind.LEAST_REQUESTS), LeastRequests)


def test_a_mixed_fleet_balances_by_capacity(monkeypatch: pytest.MonkeyPatch) -> None:
    """least-requests on a fleet is weighted, and each replica carries its pool's capacity."""
    kinds: list[BalancerKind] = []

    def spy(kind: BalancerKind) -> object:
        kinds.append(kind)
        return make_balancer(kind)

    monkeypatch.setattr(simulator, "make_balancer", spy)

    class Fixed:
        name, period_seconds, least_loaded_first = "fixed", 10.0, True

        def desired_fleet(self, view: object, fleet: object) -> list[int]:
            return [1, 2]

    pools = [simulator.GpuPool("fast", STEP, capacity=30.0),
             simulator.GpuPool("slow", STEP, capacity=10.0)]
    run = simulator.simulate_fleet(burst(40, every=1.0), pools, Fixed(),
                                   simulator.SimConfig(cold_start_seconds=5.0))
    assert kinds == [BalancerKind.WEIGHTED_LEAST_REQUESTS]
    assert sorted((r.gpu_type, r.capacity) for r in run.replicas) == [
        ("fast", 30.0), ("slow", 10.0), ("slow", 10.0)]


def test_a_mixed_fleet_starts_warm_as_a_settled_one() -> None:
    """The preferred type up to what its nodes hold, the rest of the units on the next."""
    fleet = Fleet([Cluster(STEP, 60.0, available=2, capacity=30.0),
                   Cluster(STEP, 60.0, capacity=10.0)])
    simulator.warm_fleet(fleet, 4)
    assert [len(p.serving) for p in fleet.pools] == [2, 6]
    assert not fleet.pools[0].pending


def test_a_warm_start_with_no_room_left_asks_on_the_first_type() -> None:
    fleet = Fleet([Cluster(STEP, 60.0, available=1, capacity=30.0),
                   Cluster(STEP, 60.0, available=1, capacity=10.0)])
    simulator.warm_fleet(fleet, 3)
    assert [len(p.serving) for p in fleet.pools] == [1, 1]
    assert len(fleet.pools[0].pending) == 2  # 3 - 1 - 1/3 units, asked for as whole replicas


def test_a_warm_fleet_replay_starts_on_both_types() -> None:
    class Hold:
        name, period_seconds, least_loaded_first = "hold", 10.0, True

        def desired_fleet(self, view: object, fleet: Fleet) -> list[int]:
            return [pool.size for pool in fleet.pools]

    pools = [simulator.GpuPool("fast", STEP, available=1, capacity=30.0),
             simulator.GpuPool("slow", STEP, capacity=10.0)]
    run = simulator.simulate_fleet(burst(10, every=1.0), pools, Hold(),
                                   simulator.SimConfig(cold_start_seconds=60.0,
                                                       initial_replicas=2))
    assert sorted(r.gpu_type for r in run.replicas if r.ready_at == 0.0) == [
        "fast", "slow", "slow", "slow"]
