"""Load against target: tolerance, unready pods, missing pod metrics, bounds."""

from __future__ import annotations

import pytest

from lmscale.policy import (
    DecisionReason,
    Recommendation,
    ScalingDirection,
    ScalingHistory,
    decide,
    default_scale_down,
)

from .builders import make_observation, make_spec


@pytest.mark.parametrize(
    ("replicas", "load", "expected", "reason"),
    [
        pytest.param(4, 40, 4, DecisionReason.WITHIN_TOLERANCE, id="on-target"),
        pytest.param(4, 44, 4, DecisionReason.WITHIN_TOLERANCE, id="10pct-over-is-within"),
        pytest.param(4, 36, 4, DecisionReason.WITHIN_TOLERANCE, id="10pct-under-is-within"),
        pytest.param(4, 45, 5, DecisionReason.LOAD_ABOVE_TARGET, id="just-over-tolerance"),
        pytest.param(4, 80, 8, DecisionReason.LOAD_ABOVE_TARGET, id="double-load-doubles"),
        pytest.param(2, 200, 6, DecisionReason.SCALE_UP_LIMIT, id="rate-limited-plus-4"),
        pytest.param(8, 10, 8, DecisionReason.SCALE_DOWN_STABILIZED, id="down-held-by-window"),
    ],
)
def test_ratio_with_tolerance(
    replicas: int, load: float, expected: int, reason: DecisionReason
) -> None:
    history = ScalingHistory()
    if reason is DecisionReason.SCALE_DOWN_STABILIZED:
        history = ScalingHistory(recommendations=(Recommendation(900.0, 8),))
    decision = decide(
        make_spec(),
        make_observation(replicas=replicas, running=load),
        history,
        now=1000.0,
    )
    assert (decision.replicas, decision.reason) == (expected, reason)


@pytest.mark.parametrize(
    ("ready", "starting", "load", "expected", "reason"),
    [
        pytest.param(2, 2, 40, 4, DecisionReason.COLD_START_GUARD, id="starting-cover-load"),
        pytest.param(2, 2, 44, 4, DecisionReason.COLD_START_GUARD, id="covered-within-tolerance"),
        pytest.param(2, 2, 60, 6, DecisionReason.LOAD_ABOVE_TARGET, id="beyond-starting-capacity"),
        pytest.param(4, 0, 60, 6, DecisionReason.LOAD_ABOVE_TARGET, id="no-unready"),
        pytest.param(2, 2, 10, 2, DecisionReason.TOO_FEW_REPLICAS, id="scale-down-ignores-unready"),
    ],
)
def test_unready_pods_never_push_a_scale_up(
    ready: int, starting: int, load: float, expected: int, reason: DecisionReason
) -> None:
    observation = make_observation(replicas=ready + starting, running=load)
    observation = type(observation)(
        spec_replicas=ready + starting,
        ready_replicas=ready,
        starting_replicas=starting,
        waiting=0.0,
        running=load,
    )
    spec = make_spec(min_replicas=2, scale_down=ScalingDirection(0, default_scale_down().rules))
    decision = decide(spec, observation, ScalingHistory(), now=0.0)
    assert (decision.replicas, decision.reason) == (expected, reason)


@pytest.mark.parametrize(
    ("ready", "reporting", "load", "expected", "reason"),
    [
        pytest.param(4, 2, 16, 4, DecisionReason.MISSING_POD_METRICS, id="down-missing-on-target"),
        pytest.param(4, 2, 4, 3, DecisionReason.LOAD_BELOW_TARGET, id="down-still-if-very-low"),
        pytest.param(4, 2, 30, 4, DecisionReason.MISSING_POD_METRICS, id="up-missing-as-zero"),
        pytest.param(4, 2, 60, 6, DecisionReason.LOAD_ABOVE_TARGET, id="up-beyond-missing"),
    ],
)
def test_missing_pod_metrics_count_against_the_change(
    ready: int, reporting: int, load: float, expected: int, reason: DecisionReason
) -> None:
    spec = make_spec(scale_down=ScalingDirection(0, default_scale_down().rules))
    observation = make_observation(replicas=ready, running=load, reporting_replicas=reporting)
    decision = decide(spec, observation, ScalingHistory(), now=0.0)
    assert (decision.replicas, decision.reason) == (expected, reason)


@pytest.mark.parametrize(
    ("current", "expected", "reason"),
    [
        pytest.param(25, 20, DecisionReason.TOO_MANY_REPLICAS, id="above-max"),
        pytest.param(0, 1, DecisionReason.TOO_FEW_REPLICAS, id="zero-without-scale-to-zero"),
    ],
)
def test_bounds_come_first(current: int, expected: int, reason: DecisionReason) -> None:
    observation = make_observation(replicas=current, running=0.0)
    decision = decide(make_spec(), observation, ScalingHistory(), now=0.0)
    assert (decision.replicas, decision.reason) == (expected, reason)


def test_max_replicas_caps_a_large_scale_up() -> None:
    observation = make_observation(replicas=16, running=1000.0)
    decision = decide(make_spec(), observation, ScalingHistory(), now=0.0)
    assert (decision.replicas, decision.reason) == (20, DecisionReason.TOO_MANY_REPLICAS)


def test_decision_message_says_what_changed_and_why() -> None:
    decision = decide(make_spec(), make_observation(running=80.0), ScalingHistory(), now=0.0)
    assert decision.message.startswith("4 -> 8: 80 in-flight requests (0 waiting) on 4 ready")
    assert "target 10 per replica" in decision.message
