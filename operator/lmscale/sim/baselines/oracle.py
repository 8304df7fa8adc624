"""`oracle`: a clairvoyant lower bound on GPU-hours, not a policy.

It knows every future arrival. Each request is given the time it would take on a replica
at the target load (its prefill plus its output at the target's time per token); the
requests in flight, averaged over each 30 s bin and divided by a per-replica
concurrency, give the replicas needed. Each replica is started exactly one cold start
before it is needed and stopped as soon as it is not (it drains, then its GPUs are
released). The per-replica concurrency is searched like `static-peak`'s count: the
loosest one whose replay still meets the SLO goal. A fixed count is a schedule too, so
the reported bound is the cheaper of this schedule and `static-peak`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from lmscale.sim.engine import StepModel
from lmscale.sim.observe import ClusterView
from lmscale.sim.request import Request
from lmscale.sim.simulator import SimRun

BIN_SECONDS = 30.0
TICK_SECONDS = 5.0


def mean_in_flight(
    requests: Sequence[Request],
    *,
    perf: StepModel,
    tpot_seconds: float,
    bin_seconds: float = BIN_SECONDS,
) -> list[float]:
    """Time-averaged requests in flight in each bin, at the target's service times."""
    events: list[tuple[float, int]] = []
    for request in requests:
        duration = prefill_seconds(perf, request.prompt_tokens)
        duration += (request.output_tokens - 1) * tpot_seconds
        events.append((request.arrival_s, 1))
        events.append((request.arrival_s + duration, -1))
    events.sort()
    bins = int(events[-1][0] // bin_seconds) + 1 if events else 0
    area = [0.0] * bins
    level, last = 0, 0.0
    for time, change in events:
        _spread(area, level, last, time, bin_seconds)
        level, last = level + change, time
    return [a / bin_seconds for a in area]


def _spread(area: list[float], level: int, start: float, end: float, width: float) -> None:
    """Add `level` over [start, end) to the bins it covers."""
    while level and start < end:
        index = int(start // width)
        stop = min(end, (index + 1) * width)
        area[index] += level * (stop - start)
        start = stop


def prefill_seconds(perf: StepModel, tokens: int) -> float:
    """A prompt's prefill alone on a replica, chunk by chunk."""
    chunk = max(1, perf.max_num_batched_tokens)
    total, done = 0.0, 0
    while done < tokens:
        size = min(chunk, tokens - done)
        total += perf.step_seconds(prefill_tokens=size, decode_seqs=0, kv_tokens=done)
        done += size
    return total


class OracleScaler:
    """Replays a precomputed need, `lead_seconds` ahead, at bin resolution."""

    least_loaded_first = True

    def __init__(
        self, need: Sequence[int], *, lead_seconds: float, bin_seconds: float = BIN_SECONDS
    ) -> None:
        self.name = "oracle"
        self.need = list(need)
        self.lead = lead_seconds
        self.bin = bin_seconds
        self.period_seconds = TICK_SECONDS

    def desired(self, view: ClusterView) -> int:
        first = int(view.now // self.bin)
        last = int((view.now + self.lead) // self.bin)  # bins starting within the lead
        window = self.need[first : last + 1]
        return max(window, default=0)


def need_for(demand: Sequence[float], *, per_replica: float, minimum: int) -> list[int]:
    """Replicas per bin for a per-replica concurrency."""
    return [max(minimum, math.ceil(load / per_replica - 1e-9)) for load in demand]


def search(
    attainment_of: Callable[[float], tuple[float, SimRun]],
    *,
    goal: float,
    low: float = 0.25,
    high: float = 2.0,
    rounds: int = 6,
) -> tuple[float, SimRun]:
    """The largest concurrency factor in [low, high] whose replay meets `goal`."""
    best: tuple[float, SimRun] | None = None
    for _ in range(rounds):
        middle = (low + high) / 2
        attainment, run = attainment_of(middle)
        if attainment >= goal:
            best, low = (middle, run), middle
        else:
            high = middle
    if best is None:
        return low, attainment_of(low)[1]
    return best
