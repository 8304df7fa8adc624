"""The learned rise within one reaction time (`policy.volatility`), cycle by cycle."""

from __future__ import annotations

import math
from collections.abc import Callable

from lmscale.policy import volatility

PERIOD = 10.0
REACTION = 135.0
PER_REPLICA = 2.5


def learn(rate: Callable[[float], float], *, minutes: float) -> volatility.Volatility:
    """`observe` once a cycle, with the rates of the last reaction time, as `decide` does."""
    state, rates, now = volatility.Volatility(), [], 0.0
    while now < minutes * 60:
        now += PERIOD
        rates = [(t, r) for t, r in rates if now - t < REACTION] + [(now, rate(now))]
        state = volatility.observe(
            state, rates, now=now, reaction=REACTION, per_replica=PER_REPLICA
        )
    return state


def filling(t: float) -> float:
    """10 req/s from the start, read as a 60 s window fills: a third, two thirds, all."""
    return 10.0 * min(1.0, t / 60.0)


def test_the_rate_estimate_filling_up_is_not_learned_as_a_rise() -> None:
    """The first minutes of load read low while the rate window fills. Learned as rises
    (the old code), they weighed in the top bucket and held the peak
    seen for the best part of an hour on a flat load."""
    state = learn(filling, minutes=40)
    assert state.weights[-1] == 0.0
    assert volatility.headroom(state) <= 1.1


def test_until_enough_is_known_the_peak_seen_is_held() -> None:
    """A quarter hour of samples is the least that says the load is calm; before that the
    fleet keeps what the busiest rate seen needs (the old code kept nothing)."""
    state = learn(lambda t: 20.0 if t < 300 else 10.0, minutes=10)
    assert state.total < volatility.MIN_WEIGHT
    replicas, held, rise = volatility.floor(
        state, [(600.0, 10.0)], now=600.0, reaction=REACTION, per_replica=PER_REPLICA
    )
    assert rise == volatility.TOP_RISE
    assert held >= 20.0
    assert replicas == math.ceil(held / PER_REPLICA)
