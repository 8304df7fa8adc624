"""The activator's arrival rate with replicas up: a floor under the engines' estimate, the
rate itself where the engines count no completions, and harmless in the zero-only mode."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lmscale.policy import (
    DecisionReason,
    Observation,
    ScalingHistory,
    ScalingPolicySpec,
    arrivals,
    decide,
)

from .builders import make_spec

CURVE = ((20.0, 2.5), (30.0, 3.0))  # 20 in flight carry 2.5 req/s per replica (the target)


def spec(**overrides: object) -> ScalingPolicySpec:
    base: dict[str, object] = {"max_replicas": 64, "target_per_replica": 20.0,
                               "load_curve": CURVE, "startup_seconds": 110.0}
    return make_spec(**(base | overrides))


def steady(**extra: object) -> Observation:
    """Four replicas at the target: 80 in flight, 10 completing per second."""
    base = Observation(spec_replicas=4, ready_replicas=4, waiting=0.0, running=80.0,
                       completions_per_second=10.0)
    return replace(base, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(("engines", "front", "expected"), [
    (10.0, 20.0, 20.0), (10.0, 5.0, 10.0), (10.0, None, 10.0), (None, 7.0, 7.0),
    (None, None, 0.0), (-1.0, None, 0.0),
])  # fmt: skip
def test_the_rate_is_the_engines_never_below_the_front_door(
        engines: float | None, front: float | None, expected: float) -> None:
    assert arrivals.counted(engines, front) == expected


def test_with_replicas_up_a_front_door_rate_above_the_engines_sizes_the_fleet() -> None:
    """The engines read 10 req/s (4 replicas); the activator counts 20 arriving: 8."""
    decision = decide(spec(), steady(front_arrivals_per_second=20.0), ScalingHistory(),
                      now=100.0)
    assert decision.recommendation >= 8
    assert decision.reason is DecisionReason.LOAD_ABOVE_TARGET
    assert "20.0 requests/s arriving" in decision.message


def test_a_front_door_rate_below_the_engines_changes_nothing() -> None:
    without = decide(spec(), steady(), ScalingHistory(), now=100.0)
    below = decide(spec(), steady(front_arrivals_per_second=6.0), ScalingHistory(), now=100.0)
    assert (below.replicas, below.reason, below.message) == (
        without.replicas, without.reason, without.message)
    assert below.reason is DecisionReason.WITHIN_TOLERANCE


def test_without_a_completion_counter_the_front_door_rate_is_the_rate() -> None:
    policy = spec(front_door_counts_all=True)
    observation = steady(completions_per_second=None, front_arrivals_per_second=20.0)
    assert arrivals.usable(policy, observation)
    history = ScalingHistory()
    for cycle in range(6):  # in-flight flat: nothing read as a rise, nothing divided by
        decision = decide(policy, observation, history, now=100.0 + 10.0 * cycle)
        history = decision.history
        assert "20.0 requests/s arriving" in decision.message
        assert decision.recommendation == 8
    assert [rate for _, _, rate in history.arrivals] == [20.0] * 6


def test_a_zero_only_front_door_is_no_rate_without_a_completion_counter() -> None:
    """At zero only, the activator's rate decays once replicas are ready: it is a part of
    the arrivals, so it does not replace the engines' count; in-flight sizing is kept."""
    observation = steady(completions_per_second=None, front_arrivals_per_second=2.0)
    assert not arrivals.usable(spec(), observation)
    decision = decide(spec(), observation, ScalingHistory(), now=100.0)
    assert "in-flight requests" in decision.message
    assert not arrivals.usable(spec(front_door_counts_all=True),
                      replace(observation, front_arrivals_per_second=None))


def test_after_a_wake_the_zero_only_rate_decaying_below_the_engines_asks_for_nothing_more(
) -> None:
    """Woken by a burst held at zero, the activator's rate (what arrived at zero) falls
    over the window as traffic goes to the pods; while it is at or below the engines'
    estimate the decisions are the engines' own, cycle by cycle."""
    policy = spec(scale_to_zero=True)
    with_front, without = ScalingHistory(), ScalingHistory()
    for cycle in range(12):
        now = 200.0 + 10.0 * cycle
        ready = 0 if cycle < 3 else 4
        load = 60.0 + 2.0 * cycle
        base = Observation(spec_replicas=4, ready_replicas=ready, starting_replicas=4 - ready,
                           waiting=0.0 if ready else None, running=load if ready else None,
                           held=0.0 if ready else load, completions_per_second=9.0 * (ready > 0))
        if not ready:
            base = replace(base, completions_per_second=None)
        front = max(0.0, 9.0 - 1.5 * cycle)  # at most the 9-10 req/s the engines read
        a = decide(policy, replace(base, front_arrivals_per_second=front), with_front, now=now)
        b = decide(policy, base, without, now=now)
        with_front, without = a.history, b.history
        assert a.replicas <= b.replicas
        assert a.recommendation <= b.recommendation
