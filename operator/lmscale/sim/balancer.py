"""Load balancing across serving replicas, as a Service or an Ingress would do it."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Protocol

from lmscale.sim.cluster import Replica
from lmscale.sim.request import CompletedRequest


class BalancerKind(enum.StrEnum):
    ROUND_ROBIN = "round-robin"
    LEAST_REQUESTS = "least-requests"
    # Least requests relative to each replica's capacity: what a mixed fleet's router does.
    WEIGHTED_LEAST_REQUESTS = "weighted-least-requests"


class Balancer(Protocol):
    def pick(
        self, replicas: Sequence[Replica], now: float, done: list[CompletedRequest]
    ) -> Replica:
        """Choose a replica for a request arriving at `now`; may append completions."""
        ...


class RoundRobin:
    """Each replica in turn (kube-proxy IPVS, ingress-nginx's default)."""

    def __init__(self) -> None:
        self._next = 0

    def pick(
        self, replicas: Sequence[Replica], now: float, done: list[CompletedRequest]
    ) -> Replica:
        replica = replicas[self._next % len(replicas)]
        self._next += 1
        return replica


class LeastRequests:
    """The replica with the fewest requests in flight (Envoy's least_request, exhaustive).

    Only replicas whose in-flight count may have changed since they were last run are
    advanced, so a pick costs a comparison per replica.
    """

    def pick(
        self, replicas: Sequence[Replica], now: float, done: list[CompletedRequest]
    ) -> Replica:
        best, fewest = replicas[0], -1
        for replica in replicas:
            engine = replica.engine
            if engine.next_change <= now:
                done.extend(engine.advance(now))
            count = engine.in_flight
            if fewest < 0 or count < fewest:
                best, fewest = replica, count
        return best


class WeightedLeastRequests:
    """The replica whose in-flight count, one more request included, is the smallest share
    of its capacity (Envoy's weighted least_request, weight / (active + 1), exhaustive).

    On a mixed fleet a replica of a slower GPU type carries fewer requests at the SLO (its
    type's calibrated target); plain least-requests would give it a fast replica's share
    and push it past the objectives. Counting the request being placed makes an idle fleet
    fill its largest replicas first rather than by list order. Ties go to the first replica
    in the list, so on replicas of one capacity it picks exactly what `LeastRequests` picks.
    Shares are compared by cross-multiplying, so no division rounds two equal shares apart.
    """

    def pick(
        self, replicas: Sequence[Replica], now: float, done: list[CompletedRequest]
    ) -> Replica:
        best, best_load, best_capacity = replicas[0], -1, 1.0
        for replica in replicas:
            engine = replica.engine
            if engine.next_change <= now:
                done.extend(engine.advance(now))
            load = engine.in_flight + 1
            capacity = replica.capacity
            if best_load < 0 or load * best_capacity < best_load * capacity:
                best, best_load, best_capacity = replica, load, capacity
        return best


def make_balancer(kind: BalancerKind) -> Balancer:
    if kind is BalancerKind.ROUND_ROBIN:
        return RoundRobin()
    if kind is BalancerKind.WEIGHTED_LEAST_REQUESTS:
        return WeightedLeastRequests()
    return LeastRequests()
