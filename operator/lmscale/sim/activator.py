"""The activator on the virtual clock: requests held at zero, wake requests, its two series.

What `lmscale gateway` does for one model, in the simulator's terms:
- while no replica is ready it holds arrivals in a bounded queue (`gateway.hold.admit`, the
  activator's own rule): a full queue answers 503 at once (rejected), a request held past
  the hold timeout is answered 503 (timed out); both are SLO misses, counted apart;
- the first held request asks the operator to wake the model (the annotation of
  `gateway.discovery.Waker`), again every `wake_interval_seconds` while it holds one; the
  operator runs a cycle `wake_latency_seconds` later instead of waiting out its period;
- once a replica is ready every held request is released to it;
- it counts arrivals and exports the count of held requests; Prometheus scrapes both with
  the engines, and the scaler reads them as `metrics.activator` does: the latest held
  count and `rate(arrivals_total[window])` (the `FrontDoor` the operator hands the policy).

`ZERO` is the selector-less Service: the activator sees requests only while the model has
no ready replica. `ALWAYS` (`routing.activator: always`) puts it in front of every request,
so its arrival counter is the whole arrival rate; forwarding costs nothing here.
"""

from __future__ import annotations

import bisect
import enum
from collections import deque
from dataclasses import dataclass, field

from lmscale.gateway import hold
from lmscale.policy.observation import FrontDoor
from lmscale.sim.request import Request


class ActivatorMode(enum.StrEnum):
    """When the activator is in the request path."""

    ZERO = "zero"  # only while no replica is ready (the model's selector-less Service)
    ALWAYS = "always"  # in front of every request (routing.activator: always)


@dataclass(frozen=True)
class ActivatorConfig:
    """The activator's settings: its hold queue and how fast a wake request acts.

    `hold` is the gateway's own `HoldSettings` (capacity 256, routing.holdTimeoutSeconds
    300 by default); `wake_latency_seconds` covers the annotation patch, the watch event and
    the start of the cycle; `wake_interval_seconds` is the Waker's repeat interval.
    """

    mode: ActivatorMode = ActivatorMode.ZERO
    hold: hold.HoldSettings = field(default_factory=hold.HoldSettings)
    wake_latency_seconds: float = 1.0
    wake_interval_seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.wake_latency_seconds < 0 or self.wake_interval_seconds <= 0:
            raise ValueError("wake latency must be 0 or more and the wake interval above 0")


@dataclass
class Activator:
    """One model's front door: its queue, what became of held requests, and its series."""

    config: ActivatorConfig
    rate_window_seconds: float = 60.0
    queue: deque[Request] = field(default_factory=deque)
    arrivals: int = 0  # lmscale_gateway_arrivals_total
    held: list[Request] = field(default_factory=list)  # every request that waited
    waits: list[float] = field(default_factory=list)  # seconds each released request waited
    timed_out: list[Request] = field(default_factory=list)
    rejected: list[Request] = field(default_factory=list)
    wakes: list[float] = field(default_factory=list)  # wake-request stamps, in order
    _scrapes: deque[tuple[float, int]] = field(default_factory=deque)
    _scraped_waiting: float | None = None

    def arrive(self, request: Request, now: float, *, ready: int) -> bool:
        """Count `request`; whether it goes on to a replica now (False: held or refused)."""
        if self.config.mode is ActivatorMode.ALWAYS or ready == 0:
            self.arrivals += 1
        outcome = hold.admit(ready_backends=ready, waiting=len(self.queue),
                             settings=self.config.hold)
        if outcome is hold.Outcome.FORWARD:
            return True
        if outcome is hold.Outcome.REJECT_FULL:
            self.rejected.append(request)
            return False
        self.queue.append(request)
        self.held.append(request)
        if not self.wakes or self._next_wake <= now:
            self.wakes.append(now)
        return False

    @property
    def _next_wake(self) -> float:
        # the same sum as `next_event`: a difference could round below the interval and
        # leave an event that never fires
        return self.wakes[-1] + self.config.wake_interval_seconds

    @property
    def next_event(self) -> float:
        """The next held request's deadline or repeated wake request (inf: nothing held)."""
        if not self.queue:
            return float("inf")
        deadline = self.queue[0].arrival_s + self.config.hold.timeout_s
        return min(deadline, self._next_wake)

    def on_event(self, now: float) -> bool:
        """Time out held requests due by `now`; whether a wake request went out now."""
        while self.queue and self.queue[0].arrival_s + self.config.hold.timeout_s <= now:
            self.timed_out.append(self.queue.popleft())
        if self.queue and self._next_wake <= now:
            self.wakes.append(now)  # the Waker repeats its request while it holds one
            return True
        return False

    def release(self, now: float) -> list[Request]:
        """Every held request, oldest first, for the replica that just became ready."""
        released = list(self.queue)
        self.queue.clear()
        self.waits.extend(now - r.arrival_s for r in released)
        return released

    def scrape(self, now: float) -> None:
        """Prometheus reads the activator: its held gauge and its arrival counter."""
        self._scraped_waiting = float(len(self.queue))
        self._scrapes.append((now, self.arrivals))
        while self._scrapes and self._scrapes[0][0] <= now - self.rate_window_seconds:
            self._scrapes.popleft()

    def front_door(self) -> FrontDoor:
        """What `metrics.activator.read` would give the scaler from the latest scrapes.

        The rate is the counter's increase over the samples in the window, as Prometheus'
        `rate()` reads it (None before two scrapes: no rate yet, never 0).
        """
        rate = None
        if len(self._scrapes) >= 2:
            (first_t, first_n), (last_t, last_n) = self._scrapes[0], self._scrapes[-1]
            rate = (last_n - first_n) / (last_t - first_t)
        return FrontDoor(held=self._scraped_waiting, arrivals_per_second=rate)

    def wake_seen(self, now: float) -> float | None:
        """The latest wake request the operator has seen by `now` (the annotation's time)."""
        index = bisect.bisect_right(self.wakes, now - self.config.wake_latency_seconds)
        return self.wakes[index - 1] if index else None
