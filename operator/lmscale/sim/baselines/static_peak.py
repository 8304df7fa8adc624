"""`static-peak`: the fewest fixed replicas that meet the SLO over the whole trace.

Found by binary search over replica counts, replaying the trace at each probe; SLO
attainment grows with replicas, so the counts that meet the goal form a suffix.
"""

from __future__ import annotations

from collections.abc import Callable

from lmscale.sim.simulator import SimRun


def search(
    attainment_of: Callable[[int], tuple[float, SimRun]],
    *,
    goal: float,
    low: int,
    high: int,
) -> tuple[int, SimRun]:
    """Fewest replicas in [low, high] reaching `goal`; `high` itself if none does."""
    tried: dict[int, tuple[float, SimRun]] = {}

    def probe(replicas: int) -> float:
        if replicas not in tried:
            tried[replicas] = attainment_of(replicas)
        return tried[replicas][0]

    top = high
    while low < high:
        middle = (low + high) // 2
        if probe(middle) >= goal:
            high = middle
        else:
            low = middle + 1
    probe(low)
    if tried[low][0] < goal:
        probe(top)
        return top, tried[top][1]
    return low, tried[low][1]
