"""In-flight counts sized through the engine's load curve, not linearly."""

from __future__ import annotations

import pytest

from lmscale.policy import (
    DecisionReason,
    ScalingDirection,
    ScalingHistory,
    decide,
    default_scale_down,
    loadcurve,
)

from .builders import make_observation, make_spec

# A batching engine: 1 req/s keeps 5 in flight, 2 req/s keeps 10, 3 req/s keeps 20.
CURVE = ((5.0, 1.0), (10.0, 2.0), (20.0, 3.0))


@pytest.mark.parametrize(
    ("in_flight", "rate"),
    [
        pytest.param(2.5, 0.5, id="from-the-origin"),
        pytest.param(10.0, 2.0, id="on-a-point"),
        pytest.param(15.0, 2.5, id="between-points"),
        pytest.param(25.0, 3.75, id="past-the-end-in-proportion"),
    ],
)
def test_rate_of(in_flight: float, rate: float) -> None:
    assert loadcurve.rate_of(CURVE, in_flight) == pytest.approx(rate)


def test_curve_must_rise() -> None:
    with pytest.raises(ValueError, match="must increase"):
        make_spec(load_curve=((5.0, 1.0), (4.0, 2.0)))


@pytest.mark.parametrize(
    ("replicas", "in_flight", "expected", "reason"),
    [
        # 8 replicas at 5 in flight each serve 8 req/s; at 20 per replica (the target) a
        # replica serves 3 req/s: 3 replicas, not the 2 a linear count would give.
        pytest.param(8, 40.0, 3, DecisionReason.LOAD_BELOW_TARGET, id="scale-down-by-rate"),
        pytest.param(4, 80.0, 4, DecisionReason.WITHIN_TOLERANCE, id="at-target"),
        pytest.param(4, 120.0, 6, DecisionReason.LOAD_ABOVE_TARGET, id="overload-past-the-curve"),
    ],
)
def test_sizing_through_the_curve(
    replicas: int, in_flight: float, expected: int, reason: DecisionReason
) -> None:
    spec = make_spec(
        target_per_replica=20.0,
        load_curve=CURVE,
        trend_window_seconds=0.0,
        scale_down=ScalingDirection(0, default_scale_down().rules),
    )
    observation = make_observation(replicas=replicas, running=in_flight)
    decision = decide(spec, observation, ScalingHistory(), now=0.0)
    assert (decision.recommendation, decision.reason) == (expected, reason)


def test_a_queue_past_the_curve_keeps_asking_while_replicas_start() -> None:
    """40 in flight on each of 4 replicas is twice the curve's end: 6 req/s each in
    proportion, 24 in all, 12 replicas at the target's 2 req/s. The one starting
    replica does not cover that (a rate that flattened at the curve's top would)."""
    spec = make_spec(target_per_replica=10.0, load_curve=CURVE, trend_window_seconds=0.0)
    observation = make_observation(
        replicas=4, running=160.0, spec_replicas=5, starting_replicas=1
    )
    decision = decide(spec, observation, ScalingHistory(), now=0.0)
    assert decision.recommendation == 12
