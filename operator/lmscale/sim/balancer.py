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


def make_balancer(kind: BalancerKind) -> Balancer:
    if kind is BalancerKind.ROUND_ROBIN:
        return RoundRobin()
    return LeastRequests()
