"""Trace replay on a virtual clock: arrivals, scrapes, scaler cycles and cold starts.

Everything happens in time order on one clock: a request arriving at t is routed after
every scrape, scaler cycle and readiness due at or before t. Metrics reach the scaler a
scrape interval late; scaler decisions take effect at once on the Deployment, and new
replicas serve after their cold start. With an activator (`SimConfig.activator`,
`lmscale.sim.activator`) requests that find no ready replica wait in its bounded queue, its
wake request runs a scaler cycle within the wake latency, and its series reach the scaler
with the engines'; without one a gateway holds them unbounded and the scaler counts them
at once (`ClusterView.gateway_waiting`). Deterministic: no randomness, no wall clock
(the caller measures wall time).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, cast

from lmscale.sim.activator import Activator, ActivatorConfig
from lmscale.sim.balancer import BalancerKind, make_balancer
from lmscale.sim.cluster import Cluster, Fleet, Replica
from lmscale.sim.engine import StepModel
from lmscale.sim.observe import ClusterView, MetricStore
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
    available_replicas: int | None = None  # replicas the GPU type's nodes hold (None: any)
    activator: ActivatorConfig | None = None  # the front door at zero (None: a plain gateway)


@dataclass(frozen=True)
class GpuPool:
    """One GPU type of a mixed fleet: its replicas' step model, how many its nodes hold, and
    what one replica carries at the SLO (its calibrated target: the balancer's weight)."""

    gpu_type: str
    perf: StepModel
    available: int | None = None
    capacity: float = 1.0


class FleetScaler(Protocol):
    """A scaler of a mixed fleet: replicas per GPU type (the pools' order) each cycle."""

    name: str
    period_seconds: float
    least_loaded_first: bool

    def desired_fleet(self, view: ClusterView, fleet: Fleet) -> Sequence[int]: ...


@dataclass(frozen=True)
class TimelinePoint:
    """The fleet at one scaler cycle (`by_type`: replicas per GPU type of a mixed fleet)."""

    time: float
    replicas: int
    ready: int
    in_flight: int
    arrivals: int
    by_type: tuple[int, ...] = ()


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
    activator: Activator | None = None  # held, timed-out and rejected requests, when modelled


def simulate(
    requests: Sequence[Request],
    perf: StepModel,
    scaler: Scaler,
    config: SimConfig,
    *,
    progress: Callable[[float], None] | None = None,
) -> SimRun:
    """Replay `requests` (sorted by arrival) through `scaler` on a simulated fleet."""
    cluster = Cluster(
        perf,
        cold_start_seconds=config.cold_start_seconds,
        chunked_prefill=config.chunked_prefill,
        drain_grace_seconds=config.drain_grace_seconds,
        available=config.available_replicas,
    )
    return _Replay(requests, cluster, scaler, config, progress).run()


def simulate_fleet(
    requests: Sequence[Request],
    pools: Sequence[GpuPool],
    scaler: FleetScaler,
    config: SimConfig,
    *,
    progress: Callable[[float], None] | None = None,
) -> SimRun:
    """Replay `requests` on a fleet of several GPU types, warm as a settled one (`warm_fleet`).

    Least-requests balancing is weighted by each pool's capacity here, as lmscale's
    activator weighs backends by their `lmscale.dev/capacity`: unweighted, a slow type's
    replica gets a fast one's share of the requests and misses the objectives. On replicas
    of one capacity the two pick alike.
    """
    if config.balancer is BalancerKind.LEAST_REQUESTS:
        config = replace(config, balancer=BalancerKind.WEIGHTED_LEAST_REQUESTS)
    fleet = Fleet([
        Cluster(
            pool.perf,
            cold_start_seconds=config.cold_start_seconds,
            chunked_prefill=config.chunked_prefill,
            drain_grace_seconds=config.drain_grace_seconds,
            available=pool.available,
            gpu_type=pool.gpu_type,
            capacity=pool.capacity,
        )
        for pool in pools
    ])
    return _Replay(requests, fleet, scaler, config, progress).run()


def warm_fleet(fleet: Fleet, units: int) -> None:
    """Start `units` of capacity (in replicas of the first type) ready, as a settled fleet
    would run them: each type in order up to what its nodes hold, a replica counting its
    capacity over the first type's. What no type has room for stays pending on the first.

    A fleet whose preferred type ran out before the replay began has already moved the
    rest to its fallbacks; starting it all on the preferred type would replay the fallback
    delay and a cold start at t=0 instead of the policy on a settled fleet.
    """
    base = fleet.pools[0].capacity
    left = float(units)
    for pool in fleet.pools:
        if left <= 1e-9:
            return
        weight = pool.capacity / base
        room = math.inf if pool.available is None else max(0, pool.available - pool.placed)
        count = int(min(room, math.ceil(left / weight - 1e-9)))
        for _ in range(count):
            pool.add(0.0, ready_now=True)
        left -= count * weight
    for _ in range(math.ceil(left - 1e-9)):
        fleet.pools[0].add(0.0, ready_now=True)  # no room: pending, as the Deployment asks


class _Replay:
    """The event loop's state; one instance per `simulate` call."""

    def __init__(
        self,
        requests: Sequence[Request],
        cluster: Cluster | Fleet,
        scaler: Scaler | FleetScaler,
        config: SimConfig,
        progress: Callable[[float], None] | None,
    ) -> None:
        self.requests, self.scaler, self.config, self.progress = requests, scaler, config, progress
        self.cluster = cluster
        if isinstance(cluster, Fleet):
            warm_fleet(cluster, config.initial_replicas)
        else:
            for _ in range(config.initial_replicas):
                cluster.add(0.0, ready_now=True)
        self.store = MetricStore(rate_window_seconds=config.rate_window_seconds)
        self.balancer = make_balancer(config.balancer)
        self.gateway: deque[Request] = deque()
        self.activator = (None if config.activator is None else
                          Activator(config.activator, config.rate_window_seconds))
        self.done: list[CompletedRequest] = []
        self.timeline: list[TimelinePoint] = []
        self.next_scrape = config.scrape_interval_seconds
        self.next_tick = scaler.period_seconds
        self.scale_events = 0
        self.arrivals_since_tick = 0
        self.max_size = self.cluster.placed

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
            activator=self.activator,
        )

    def _events_until(self, until: float) -> None:
        """Readiness, scrapes and scaler cycles due by `until`, in time order."""
        while self._step(until):
            pass

    def _step(self, until: float) -> bool:
        """The next readiness, scrape, activator event or cycle, if due by `until`."""
        ready = self.cluster.next_ready
        front = self.activator.next_event if self.activator is not None else math.inf
        when = min(ready, self.next_scrape, self.next_tick, front)
        if when > until:
            return False
        if ready == when:
            self._ready(when)
        elif front == when:
            assert self.activator is not None
            if self.activator.on_event(when):
                self._wake(when)
        elif self.next_scrape == when:
            self.done.extend(self.store.scrape(self.cluster, when))
            if self.activator is not None:
                self.activator.scrape(when)
            self.done.extend(self.cluster.settle_draining(when))
            self.next_scrape += self.config.scrape_interval_seconds
        else:
            self._tick(when)
            # the operator's loop waits a whole period after any cycle, a woken one too
            self.next_tick = when + self.scaler.period_seconds
        return True

    def _wake(self, now: float) -> None:
        """The activator's wake request: a cycle once the operator sees it, not at the period."""
        assert self.activator is not None
        self.next_tick = min(self.next_tick, now + self.activator.config.wake_latency_seconds)

    def _ready(self, now: float) -> None:
        self.cluster.become_ready(now)
        while self.gateway and self.cluster.serving:
            self._route(self.gateway.popleft(), now)
        if self.activator is not None and self.cluster.serving:
            for request in self.activator.release(now):
                self._submit(request, now)

    def _tick(self, now: float) -> None:
        view = self.store.view(self.cluster, now, gateway_waiting=len(self.gateway))
        if self.activator is not None:
            view = replace(view, front=self.activator.front_door(),
                           wake_requested_at=self.activator.wake_seen(now))
        by_type: tuple[int, ...] = ()
        if isinstance(self.cluster, Fleet):
            mixed = cast(FleetScaler, self.scaler)
            wanted_each = [min(max(0, n), self.config.max_replicas)
                           for n in mixed.desired_fleet(view, self.cluster)]
            if self.cluster.scale_each(wanted_each, now,
                                       least_loaded_first=mixed.least_loaded_first):
                self.scale_events += 1
            by_type = tuple(pool.size for pool in self.cluster.pools)
        else:
            single = cast(Scaler, self.scaler)
            wanted = min(max(0, single.desired(view)), self.config.max_replicas)
            if wanted != self.cluster.size:
                self.scale_events += 1
                self.cluster.scale_to(
                    now=now, target=wanted, least_loaded_first=single.least_loaded_first
                )
        self.max_size = max(self.max_size, self.cluster.placed)
        self.timeline.append(
            TimelinePoint(
                time=now,
                replicas=self.cluster.size,
                ready=len(self.cluster.serving),
                in_flight=view.waiting + view.running,
                arrivals=self.arrivals_since_tick,
                by_type=by_type,
            )
        )
        self.arrivals_since_tick = 0

    def _route(self, request: Request, now: float) -> None:
        serving = self.cluster.serving
        if self.activator is not None:
            wakes = len(self.activator.wakes)
            if not self.activator.arrive(request, now, ready=len(serving)):
                if len(self.activator.wakes) > wakes:
                    self._wake(now)
                return
        elif not serving:
            self.gateway.append(request)  # held by the gateway until a replica is ready
            return
        self._submit(request, now)

    def _submit(self, request: Request, now: float) -> None:
        replica = self.balancer.pick(self.cluster.serving, now, self.done)
        self.done.extend(replica.engine.submit(request, now))

    def _finish(self, end: float) -> None:
        """Stop scaling at the trace's end and let every replica finish its requests.

        Requests the activator still holds are answered or time out first: the operator
        keeps waking for them (the last ones arrived after the final cycle otherwise).
        """
        while self.activator is not None and self.activator.queue and self._step(math.inf):
            pass
        while self.gateway and self.cluster.next_ready < math.inf:
            self._ready(self.cluster.next_ready)
        for replica in self.cluster.serving:
            self.done.extend(replica.engine.advance(math.inf))
        self.done.extend(self.cluster.settle_draining(math.inf))
