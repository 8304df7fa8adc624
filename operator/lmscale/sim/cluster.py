"""The fleet of replicas a Deployment would run: starting, serving and draining.

Replicas hold GPUs from creation (the cold start loads weights onto them) until they are
gone; scale-down removes starting replicas first, then serving ones, which stop taking
requests and finish what they hold within a grace period, as the operator's drain does.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from lmscale.sim.engine import ReplicaEngine, StepModel
from lmscale.sim.request import CompletedRequest, Request


@dataclass(eq=False)
class Replica:
    """One pod: its engine and its life times."""

    id: int
    created_at: float
    ready_at: float
    engine: ReplicaEngine
    draining_since: float | None = None
    removed_at: float | None = None

    def gpu_seconds(self, *, until: float) -> float:
        """Time this replica held its GPUs within [0, until]."""
        end = min(until, self.removed_at if self.removed_at is not None else until)
        return max(0.0, end - max(0.0, self.created_at))


@dataclass
class Cluster:
    """Replicas by state, with their readiness schedule and what was dropped."""

    perf: StepModel
    cold_start_seconds: float
    chunked_prefill: bool = True
    drain_grace_seconds: float = 600.0
    starting: list[Replica] = field(default_factory=list)
    serving: list[Replica] = field(default_factory=list)
    draining: list[Replica] = field(default_factory=list)
    gone: list[Replica] = field(default_factory=list)
    dropped: list[Request] = field(default_factory=list)
    startup_samples: list[float] = field(default_factory=list)
    _ready_heap: list[tuple[float, int]] = field(default_factory=list)
    _serial: int = 0

    @property
    def size(self) -> int:
        """Replicas the Deployment asks for: starting plus serving."""
        return len(self.starting) + len(self.serving)

    @property
    def next_ready(self) -> float:
        return self._ready_heap[0][0] if self._ready_heap else float("inf")

    def add(self, now: float, *, ready_now: bool = False) -> Replica:
        """Create a replica; it serves after the cold start (or at once, for warm starts)."""
        self._serial += 1
        ready_at = now if ready_now else now + self.cold_start_seconds
        engine = ReplicaEngine(self.perf, ready_at=ready_at, chunked_prefill=self.chunked_prefill)
        replica = Replica(self._serial, now, ready_at, engine)
        if ready_now:
            self.serving.append(replica)
        else:
            self.starting.append(replica)
            heapq.heappush(self._ready_heap, (ready_at, replica.id))
        return replica

    def become_ready(self, until: float) -> list[Replica]:
        """Move replicas whose cold start ended by `until` to serving."""
        became = []
        while self._ready_heap and self._ready_heap[0][0] <= until:
            _, replica_id = heapq.heappop(self._ready_heap)
            for replica in self.starting:
                if replica.id == replica_id:
                    self.starting.remove(replica)
                    self.serving.append(replica)
                    self.startup_samples.append(replica.ready_at - replica.created_at)
                    became.append(replica)
                    break
        return became

    def scale_to(self, target: int, now: float, *, least_loaded_first: bool) -> None:
        """Add or remove replicas; removal prefers starting ones, newest first."""
        while self.size < target:
            self.add(now)
        while self.size > target and self.starting:
            replica = self.starting.pop()  # newest starting replica
            self._ready_heap = [(t, i) for t, i in self._ready_heap if i != replica.id]
            heapq.heapify(self._ready_heap)
            replica.removed_at = now
            self.gone.append(replica)
        while self.size > target:
            victim = self._victim(least_loaded_first)
            self.serving.remove(victim)
            victim.draining_since = now
            self.draining.append(victim)

    def _victim(self, least_loaded_first: bool) -> Replica:
        """Pod-deletion-cost by load (the operator's drain), else the ReplicaSet's newest."""
        if least_loaded_first:
            return min(self.serving, key=lambda r: (r.engine.in_flight, -r.id))
        return self.serving[-1]

    def settle_draining(self, now: float) -> list[CompletedRequest]:
        """Finish draining replicas that went idle; cut off those past the grace period."""
        done: list[CompletedRequest] = []
        for replica in list(self.draining):
            assert replica.draining_since is not None
            deadline = replica.draining_since + self.drain_grace_seconds
            finished = replica.engine.advance(min(now, deadline))
            done.extend(finished)
            if replica.engine.idle:
                last = max((c.finished_s for c in finished), default=replica.draining_since)
                self._retire(replica, max(last, replica.draining_since))
            elif now >= deadline:
                self.dropped.extend(replica.engine.abandon())
                self._retire(replica, deadline)
        return done

    def _retire(self, replica: Replica, at: float) -> None:
        replica.removed_at = at
        self.draining.remove(replica)
        self.gone.append(replica)

    def all_replicas(self) -> list[Replica]:
        return [*self.gone, *self.draining, *self.starting, *self.serving]
