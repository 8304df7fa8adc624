"""Whether a request may wait for a backend, and what a refused one is told. Pure: no clock.

A held request costs a connection and a little memory; a model cold-starting for minutes
could collect an unbounded pile of them, so the queue per model is bounded and the wait has a
deadline. Either limit answers 503 with Retry-After: the client backs off and tries again,
rather than seeing a reset connection.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass


class Outcome(enum.StrEnum):
    """What happens to a request that arrives for a model."""

    FORWARD = "forward"  # a backend is ready: send it now
    HOLD = "hold"  # no backend ready, room in the queue: wait
    REJECT_FULL = "queue_full"  # no backend ready and the queue is full: 503 now


class Rejection(enum.StrEnum):
    """Why a request was answered 503 (the `reason` label of the rejected counter)."""

    QUEUE_FULL = "queue_full"
    TIMEOUT = "timeout"
    SHUTDOWN = "shutdown"


DEFAULT_TIMEOUT_S = 300.0
COLD_START_MARGIN = 1.5  # the planner's cold start is an estimate from weights and storage


def timeout_for(cold_start_s: float, explicit_s: float | None = None) -> float:
    """A model's hold timeout: its routing.holdTimeoutSeconds, else long enough that the
    request that woke it is still held when the first replica is ready."""
    if explicit_s is not None:
        return explicit_s
    return max(DEFAULT_TIMEOUT_S, float(math.ceil(COLD_START_MARGIN * cold_start_s)))


@dataclass(frozen=True)
class HoldSettings:
    """The per-model hold queue: `capacity` waiting requests, each for `timeout_s` at most."""

    capacity: int = 256
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.capacity < 0:
            raise ValueError(f"hold queue capacity must be 0 or more, got {self.capacity}")
        if not self.timeout_s > 0:
            raise ValueError(f"hold timeout must be above 0 seconds, got {self.timeout_s}")


def admit(*, ready_backends: int, waiting: int, settings: HoldSettings) -> Outcome:
    """Forward when a backend is ready; otherwise hold while the queue has room."""
    if ready_backends > 0:
        return Outcome.FORWARD
    if waiting < settings.capacity:
        return Outcome.HOLD
    return Outcome.REJECT_FULL


def remaining(*, arrived_s: float, now_s: float, settings: HoldSettings) -> float:
    """Seconds a request that arrived at `arrived_s` may still wait (0 when past due)."""
    return max(0.0, arrived_s + settings.timeout_s - now_s)


def retry_after(reason: Rejection, settings: HoldSettings) -> int:
    """Retry-After seconds for a 503: a slice of the hold timeout, between 1 and 30 seconds.

    A full queue or an expired wait means a cold start is in progress or capacity is short;
    asking clients back in a tenth of the wait spreads the retries over the cold start.
    """
    if reason is Rejection.SHUTDOWN:
        return 1  # another activator replica takes the retry at once
    return int(min(30, max(1, math.ceil(settings.timeout_s / 10))))


def pick(in_flight: Sequence[int], capacities: Sequence[float] | None = None) -> int | None:
    """The index of the backend to send to (first on ties), None if there is none.

    Without `capacities`, the one with fewest requests in flight. With them (what one
    backend carries at the SLO: its pods' calibrated target, `lmscale.dev/capacity`), the
    one whose in-flight count, this request included, is the smallest share of its
    capacity: Envoy's weighted least-request, weight / (active + 1). A replica of a slower
    GPU type then gets its share of a mixed fleet's load rather than a fast one's. Shares
    are compared by cross-multiplying, so equal capacities pick what fewest-in-flight picks.
    """
    if not in_flight:
        return None
    if capacities is None:
        return min(range(len(in_flight)), key=lambda i: (in_flight[i], i))
    if len(capacities) != len(in_flight):
        raise ValueError(f"{len(in_flight)} backends but {len(capacities)} capacities")
    best = 0
    for i in range(1, len(in_flight)):
        if (in_flight[i] + 1) * capacities[best] < (in_flight[best] + 1) * capacities[i]:
            best = i
    return best
