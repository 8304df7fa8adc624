"""Trace replay on a virtual clock: arrivals, scrapes, scaler cycles and cold starts.

Everything happens in time order on one clock: a request arriving at t is routed after
every scrape, scaler cycle and readiness due at or before t. Metrics reach the scaler a
scrape interval late; scaler decisions take effect at once on the Deployment, and new
replicas serve after their cold start. Deterministic: no randomness, no wall clock
(the caller measures wall time).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from lmscale.sim.balancer import BalancerKind, make_balancer
from lmscale.sim.cluster import Cluster, Replica
from lmscale.sim.engine import StepModel
from lmscale.sim.observe import MetricStore
from lmscale.sim.request import CompletedRequest, Request
from lmscale.sim.scaler import Scaler


@dataclass(frozen=True)
class SimConfig:
    """How the simulated cluster behaves around the policy under test."""

    cold_start_seconds: float
    scrape_interval_seconds: float = 15.0
    balancer: BalancerKind = BalancerKind.LEAST_REQUESTS
    initial_replicas: int = 1
    max_replicas: int = 64
    chunked_prefill: bool = True
    rate_window_seconds: float = 60.0  # the operator's rate() window: TTFT p95, prompt tokens/s
    drain_grace_seconds: float = 600.0


@dataclass(frozen=True)
class TimelinePoint:
    """The fleet at one scaler cycle."""

    time: float
    replicas: int
    ready: int
    in_flight: int
    arrivals: int


@dataclass
class SimRun:
    """Raw outcome of one replay; `lmscale.sim.results` turns it into figures."""

    requests: int
    completed: list[CompletedRequest]
    dropped: list[Request]
    replicas: list[Replica]
    timeline: list[TimelinePoint]
    scale_events: int
    trace_seconds: float
    max_replicas: int
    policy: str
    notes: dict[str, str] = field(default_factory=dict)


def simulate(
    requests: Sequence[Request],
    perf: StepModel,
    scaler: Scaler,
    config: SimConfig,
    *,
    progress: Callable[[float], None] | None = None,
) -> SimRun:
    """Replay `requests` (sorted by arrival) through `scaler` on a simulated fleet."""
    return _Replay(requests, perf, scaler, config, progress).run()


class _Replay:
    """The event loop's state; one instance per `simulate` call."""

    def __init__(
        self,
        requests: Sequence[Request],
        perf: StepModel,
        scaler: Scaler,
        config: SimConfig,
        progress: Callable[[float], None] | None,
    ) -> None:
        self.requests, self.scaler, self.config, self.progress = requests, scaler, config, progress
        self.cluster = Cluster(
            perf,
            cold_start_seconds=config.cold_start_seconds,
            chunked_prefill=config.chunked_prefill,
            drain_grace_seconds=config.drain_grace_seconds,
        )
        for _ in range(config.initial_replicas):
            self.cluster.add(0.0, ready_now=True)
        self.store = MetricStore(rate_window_seconds=config.rate_window_seconds)
        self.balancer = make_balancer(config.balancer)
        self.gateway: deque[Request] = deque()
        self.done: list[CompletedRequest] = []
        self.timeline: list[TimelinePoint] = []
        self.next_scrape = config.scrape_interval_seconds
        self.next_tick = scaler.period_seconds
        self.scale_events = 0
        self.arrivals_since_tick = 0
        self.max_size = self.cluster.size

    def run(self) -> SimRun:
        end = self.requests[-1].arrival_s if self.requests else 0.0
        report_every = max(1, len(self.requests) // 200)
        for index, request in enumerate(self.requests):
            self._events_until(request.arrival_s)
            self._route(request, request.arrival_s)
            self.arrivals_since_tick += 1
            if self.progress is not None and index % report_every == 0:
                self.progress(request.arrival_s / end if end > 0 else 1.0)
        self._events_until(end)
        self._finish(end)
        if self.progress is not None:
            self.progress(1.0)
        return SimRun(
            requests=len(self.requests),
            completed=self.done,
            dropped=list(self.cluster.dropped) + list(self.gateway),
            replicas=self.cluster.all_replicas(),
            timeline=self.timeline,
            scale_events=self.scale_events,
            trace_seconds=end,
            max_replicas=self.max_size,
            policy=self.scaler.name,
        )

    def _events_until(self, until: float) -> None:
        """Readiness, scrapes and scaler cycles due by `until`, in time order."""
        while True:
            ready = self.cluster.next_ready
            when = min(ready, self.next_scrape, self.next_tick)
            if when > until:
                return
            if ready == when:
                self._ready(when)
            elif self.next_scrape == when:
                self.done.extend(self.store.scrape(self.cluster, when))
                self.done.extend(self.cluster.settle_draining(when))
                self.next_scrape += self.config.scrape_interval_seconds
            else:
                self._tick(when)
                self.next_tick += self.scaler.period_seconds

    def _ready(self, now: float) -> None:
        self.cluster.become_ready(now)
        while self.gateway and self.cluster.serving:
            self._route(self.gateway.popleft(), now)

    def _tick(self, now: float) -> None:
        view = self.store.view(self.cluster, now, gateway_waiting=len(self.gateway))
        wanted = min(max(0, self.scaler.desired(view)), self.config.max_replicas)
        if wanted != self.cluster.size:
            self.scale_events += 1
            self.cluster.scale_to(
                now=now, target=wanted, least_loaded_first=self.scaler.least_loaded_first
            )
            self.max_size = max(self.max_size, self.cluster.size)
        self.timeline.append(
            TimelinePoint(
                time=now,
                replicas=self.cluster.size,
                ready=len(self.cluster.serving),
                in_flight=view.waiting + view.running,
                arrivals=self.arrivals_since_tick,
            )
        )
        self.arrivals_since_tick = 0

    def _route(self, request: Request, now: float) -> None:
        serving = self.cluster.serving
        if not serving:
            self.gateway.append(request)  # held by the gateway until a replica is ready
            return
        replica = self.balancer.pick(serving, now, self.done)
        self.done.extend(replica.engine.submit(request, now))

    def _finish(self, end: float) -> None:
        """Stop scaling at the trace's end and let every replica finish its requests."""
        while self.gateway and self.cluster.next_ready < math.inf:
            self._ready(self.cluster.next_ready)
        for replica in self.cluster.serving:
            self.done.extend(replica.engine.advance(math.inf))
        self.done.extend(self.cluster.settle_draining(math.inf))
