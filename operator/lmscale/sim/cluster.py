"""The fleet of replicas a Deployment would run: starting, serving and draining.

Replicas hold GPUs from creation (the cold start loads weights onto them) until they are
gone; scale-down removes starting replicas first, then serving ones, which stop taking
requests and finish what they hold within a grace period, as the operator's drain does.

With an `available` limit (a GPU type that runs out), replicas beyond what the nodes hold
stay *pending*: the scheduler cannot place them, so they hold no GPU and never start until
a replica of this type is gone; scale-down removes pending ones first.
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
    gpu_type: str = ""
    # What it carries at the SLO (its type's calibrated target), for a capacity-aware balancer.
    capacity: float = 1.0

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
    available: int | None = None  # replicas the nodes of this type can hold (None: any)
    gpu_type: str = ""
    capacity: float = 1.0  # each replica's, for a capacity-aware balancer (Replica.capacity)
    serial_base: int = 0  # ids start above this (several clusters share one metric store)
    pending: list[float] = field(default_factory=list)  # unschedulable pods' creation times
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
        """Replicas the Deployment asks for: pending, starting and serving."""
        return len(self.pending) + len(self.starting) + len(self.serving)

    @property
    def placed(self) -> int:
        """Replicas the scheduler placed: starting plus serving."""
        return len(self.starting) + len(self.serving)

    def _room(self) -> bool:
        """Whether a node of this type is free (draining replicas still hold theirs)."""
        held = len(self.starting) + len(self.serving) + len(self.draining)
        return self.available is None or held < self.available

    def take_startup_samples(self) -> list[float]:
        """Start-up times since the last call (a scaler cycle reads each once)."""
        samples = list(self.startup_samples)
        self.startup_samples.clear()
        return samples

    @property
    def next_ready(self) -> float:
        return self._ready_heap[0][0] if self._ready_heap else float("inf")

    def add(self, now: float, *, ready_now: bool = False) -> Replica | None:
        """Create a replica; it serves after the cold start (or at once, for warm starts).

        With no free node it stays pending (None): it holds nothing and does not start.
        """
        if not self._room():
            self.pending.append(now)
            return None
        return self._place(now, ready_now=ready_now)

    def _place(self, now: float, *, ready_now: bool = False) -> Replica:
        self._serial += 1
        ready_at = now if ready_now else now + self.cold_start_seconds
        engine = ReplicaEngine(self.perf, ready_at=ready_at, chunked_prefill=self.chunked_prefill)
        replica = Replica(self.serial_base + self._serial, now, ready_at, engine,
                          gpu_type=self.gpu_type, capacity=self.capacity)
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
        while self.size > target and self.pending:
            self.pending.pop()  # newest pending pod: it never ran
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
        while self.pending and self._room() and now < float("inf"):
            self.pending.pop(0)  # the oldest pending pod gets the freed node
            self._place(now)
        return done

    def _retire(self, replica: Replica, at: float) -> None:
        replica.removed_at = at
        self.draining.remove(replica)
        self.gone.append(replica)

    def all_replicas(self) -> list[Replica]:
        return [*self.gone, *self.draining, *self.starting, *self.serving]


@dataclass
class Fleet:
    """Several clusters, one per GPU type, behind one Service: what a mixed fleet runs.

    Reads as one cluster to the replay loop and the metric store (the types' replicas
    together, the primary's first); each type scales on its own.
    """

    pools: list[Cluster]

    def __post_init__(self) -> None:
        if not self.pools:
            raise ValueError("a fleet has at least one GPU type")
        for index, pool in enumerate(self.pools):
            pool.serial_base = index * 1_000_000_000

    @property
    def serving(self) -> list[Replica]:
        if len(self.pools) == 1:
            return self.pools[0].serving
        return [r for pool in self.pools for r in pool.serving]

    @property
    def starting(self) -> list[Replica]:
        return [r for pool in self.pools for r in pool.starting]

    @property
    def size(self) -> int:
        return sum(pool.size for pool in self.pools)

    @property
    def placed(self) -> int:
        return sum(pool.placed for pool in self.pools)

    @property
    def next_ready(self) -> float:
        return min(pool.next_ready for pool in self.pools)

    @property
    def dropped(self) -> list[Request]:
        return [r for pool in self.pools for r in pool.dropped]

    def become_ready(self, until: float) -> list[Replica]:
        return [r for pool in self.pools for r in pool.become_ready(until)]

    def take_startup_samples(self) -> list[float]:
        return [s for pool in self.pools for s in pool.take_startup_samples()]

    def settle_draining(self, now: float) -> list[CompletedRequest]:
        return [c for pool in self.pools for c in pool.settle_draining(now)]

    def scale_each(self, targets: list[int] | tuple[int, ...], now: float, *,
                   least_loaded_first: bool) -> bool:
        """Set each type's replicas; whether any changed."""
        changed = False
        for pool, target in zip(self.pools, targets, strict=True):
            if target != pool.size:
                pool.scale_to(target, now, least_loaded_first=least_loaded_first)
                changed = True
        return changed

    def all_replicas(self) -> list[Replica]:
        return [r for pool in self.pools for r in pool.all_replicas()]
