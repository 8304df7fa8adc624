"""Headroom from the load's own volatility: capacity for what it rises by in one reaction.

A replica asked for now serves one reaction time later (start-up + scrape + period), so
whatever the arrival rate rises by within that time runs on the replicas already there.
Bursts shorter than the reaction time cannot be chased at all, only absorbed: scaling
after them buys GPU-hours when the burst is gone. So each resource learns, online, how
much its arrival rate rises within one reaction time: once a minute, the rate now over the
lowest rate of the last reaction time goes into a histogram whose weights halve every
`HALF_LIFE_SAMPLES` minutes. A high quantile of that rise, times the lowest rate of the
last reaction time, is a floor the fleet never goes below: calm traffic keeps a thin
margin, spiky traffic keeps its burst capacity warm, and a burst within the learned
amplitude is absorbed by capacity that is already there instead of chased.

The floor is measured from the low of the last reaction time, not from the rate now, so a
burst is not multiplied by its own amplitude; and it never exceeds the busiest rate seen
lately (a decaying peak, plus a tolerance band), so a rare spike cannot hold much more
than the load ever needed.
Nor does it hold anything while next to nothing arrives (under half a replica's rate): an
idle resource goes down to what its rate needs (`minReplicas`, or zero) within the
behaviour's windows, as it would without the headroom.

The state is a dozen rounded numbers that change at most once a minute, and not at all
while no requests arrive, so an idle resource's status is never rewritten for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

# Upper edges of the rise ratios the histogram counts; the last bucket is everything above.
EDGES = (1.05, 1.1, 1.2, 1.3, 1.45, 1.6, 1.8, 2.0, 2.5, 3.0, 4.0)
# A rise above the last edge counts as this much: held capacity past four times the low
# is a fixed fleet, which the decaying peak bounds anyway.
TOP_RISE = 5.0
# Where the learned rise is above the last edge, the bursts come from a quiet level to the
# peak: what the next one needs is the (decaying) peak, not a multiple of the quiet rate.
# (Counted as 5x the low, a burst from a tenth of the peak found half the capacity it
# needed; the rise a minute's sample catches undershoots a burst's too.)
SAMPLE_SECONDS = 60.0
# Three hours of minute samples: "the last hours".
HALF_LIFE_SAMPLES = 180.0
# The quantile of rises the floor covers. Set on the tuning scenarios only (azure,
# diurnal, long-context in `hack/bench_policies.py`): on azure 14b, 0.9 instead of 0.95
# ran 5.5% fewer GPU-hours at the same attainment; 0.8 saved nothing more.
QUANTILE = 0.9
# Fewer (weighted) samples than this, about a quarter of an hour, is no estimate yet.
MIN_WEIGHT = 15.0
# Held capacity may exceed the decaying peak by this much (the default tolerance band).
PEAK_MARGIN = 0.1
# Rises are measured from at least this fraction of one replica's rate: from near zero
# any arrival is an infinite rise.
MIN_BASE_REPLICAS = 0.5


@dataclass(frozen=True)
class Volatility:
    """The learned rise: histogram weights per `EDGES` bucket, the minute slot last
    sampled, and the decaying peak arrival rate."""

    weights: tuple[float, ...] = ()
    slot: int | None = None
    peak: float = 0.0

    @property
    def total(self) -> float:
        return sum(self.weights)


def reaction_seconds(startup_seconds: float, *, scrape: float, period: float) -> float:
    """How long a rise runs on the replicas there: start-up, metrics delay, one cycle."""
    return startup_seconds + scrape + period


def low(rates: Sequence[tuple[float, float]], *, now: float, span: float) -> float | None:
    """The lowest arrival rate of the last `span` seconds (None without samples)."""
    inside = [rate for time, rate in rates if now - time <= span]
    return min(inside) if inside else None


def observe(
    state: Volatility,
    rates: Sequence[tuple[float, float]],
    *,
    now: float,
    reaction: float,
    per_replica: float,
) -> Volatility:
    """Fold this minute's rise into the histogram (once per minute, only under load);
    raise the peak whenever the rate passes it."""
    if not rates:
        return state
    rate = rates[-1][1]
    if rate > state.peak * 1.01:
        state = replace(state, peak=_round(rate))  # a new high, whenever it comes
    slot = int(now // SAMPLE_SECONDS)
    if rate <= 0 or (state.slot is not None and slot <= state.slot):
        return state  # nothing arrives: nothing to learn, nothing to rewrite
    base = max(low(rates, now=now, span=reaction) or rate, MIN_BASE_REPLICAS * per_replica)
    rise = max(1.0, rate / base)
    elapsed = slot - state.slot if state.slot is not None else 1
    decay = 0.5 ** (max(1, elapsed) / HALF_LIFE_SAMPLES)
    weights = list(state.weights) or [0.0] * (len(EDGES) + 1)
    weights = [w * decay for w in weights]
    weights[_bucket(rise)] += 1.0
    peak = max(rate, state.peak * decay)
    return Volatility(weights=tuple(round(w, 3) for w in weights), slot=slot, peak=_round(peak))


def headroom(state: Volatility) -> float:
    """The `QUANTILE` rise within one reaction time (1.0 until enough is known)."""
    total = state.total
    if total < MIN_WEIGHT:
        return 1.0
    seen = 0.0
    for index, weight in enumerate(state.weights):
        seen += weight
        if seen >= QUANTILE * total - 1e-9:
            return EDGES[index] if index < len(EDGES) else TOP_RISE
    return TOP_RISE


def floor(
    state: Volatility,
    rates: Sequence[tuple[float, float]],
    *,
    now: float,
    reaction: float,
    per_replica: float,
) -> tuple[int, float, float]:
    """(replicas, rate held, learned rise): what the rise from the recent low needs."""
    rise = headroom(state)
    base = low(rates, now=now, span=reaction)
    if rise <= 1.0 or base is None or per_replica <= 0:
        return 0, 0.0, rise
    if rates[-1][1] < MIN_BASE_REPLICAS * per_replica:
        # Next to nothing arrives: the resource is idle, and holds no capacity for a rise.
        # (Held at the decaying peak, which decays only under load, an idle model kept its
        # peak fleet for as long as it stayed idle.) What it learned stays for its next load.
        return 0, 0.0, rise
    # The peak decays between bursts; one tolerance band over it keeps a floor that held
    # the last burst from slipping under the next one by a replica.
    ceiling = max(state.peak * (1 + PEAK_MARGIN), rates[-1][1])
    held = ceiling if rise >= TOP_RISE else min(rise * base, ceiling)
    return math.ceil(held / per_replica - 1e-9), held, rise


def _bucket(rise: float) -> int:
    for index, edge in enumerate(EDGES):
        if rise <= edge:
            return index
    return len(EDGES)


def _round(value: float) -> float:
    """Three significant digits: enough to size replicas, and stable between minutes."""
    if value <= 0:
        return 0.0
    return round(value, max(0, 2 - int(math.floor(math.log10(value)))))
