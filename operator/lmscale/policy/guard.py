"""The cold-start guard: capacity on the way, and the backlog it will drain.

While replicas start (minutes for a model), the queue grows because their capacity is
not there yet. Reacting to that growth each cycle is the 2 -> 4 -> 8 -> 16 cascade; and
when they turn ready, the queue built up meanwhile still sits on the old replicas for a
moment. So from the scale-up until `BACKLOG_GRACE_SECONDS` after the last replica on the
way is ready, waiting requests count only up to what was waiting when the scale-up was
decided. Running requests always count in full, so genuine demand growth still scales.
"""

from __future__ import annotations

from dataclasses import replace

from lmscale.policy.history import ScalingHistory
from lmscale.policy.observation import Observation

# Long enough for new replicas to take traffic and old ones to drain their queues,
# short next to a model's start-up.
BACKLOG_GRACE_SECONDS = 60.0


def waiting_cap(
    history: ScalingHistory, observation: Observation, *, on_the_way: int, now: float
) -> float | None:
    """The most waiting requests to count this cycle; `None` when the guard is off."""
    grace = history.guard_until is not None and now < history.guard_until
    if on_the_way == 0 and not grace:
        return None
    if history.guard_waiting is not None:
        return history.guard_waiting
    return observation.waiting


def after(
    history: ScalingHistory,
    observation: Observation,
    *,
    cap: float | None,
    on_the_way: int,
    scaled_up: bool,
    now: float,
) -> ScalingHistory:
    """Guard state to keep once this cycle's decision is made."""
    if on_the_way > 0 or scaled_up:
        waiting = cap if cap is not None else observation.waiting
        return replace(history, guard_waiting=waiting, guard_until=now + BACKLOG_GRACE_SECONDS)
    if cap is not None:
        return history  # in the grace period after the last replica turned ready
    return replace(history, guard_waiting=None, guard_until=None)
