"""HPA behaviour: stabilization windows and rate rules, as horizontal.go computes them."""

from __future__ import annotations

import pytest

from lmscale.policy import (
    Recommendation,
    RuleType,
    ScaleEvent,
    ScalingDirection,
    ScalingRule,
    SelectPolicy,
    behavior,
)

from .builders import make_spec

UP_FAST = ScalingDirection(
    0, (ScalingRule(RuleType.PODS, 4, 15), ScalingRule(RuleType.PERCENT, 100, 15))
)


@pytest.mark.parametrize(
    ("desired", "current", "recs", "expected"),
    [
        pytest.param(2, 8, [(750, 8), (900, 5)], 8, id="down-takes-highest-in-window"),
        pytest.param(2, 8, [(600, 8), (900, 5)], 5, id="old-recs-leave-the-window"),
        pytest.param(2, 8, [], 2, id="empty-window-follows-desired"),
        pytest.param(10, 4, [(900, 12)], 10, id="up-window-zero-follows-desired"),
    ],
)
def test_stabilization(
    desired: int, current: int, recs: list[tuple[int, int]], expected: int
) -> None:
    history = [Recommendation(float(t), n) for t, n in recs]
    got = behavior.stabilize(
        desired, current=current, recommendations=history, spec=make_spec(), now=1000.0
    )
    assert got == expected


def test_scale_up_window_takes_lowest_recommendation() -> None:
    spec = make_spec(scale_up=ScalingDirection(120, UP_FAST.rules))
    recs = [Recommendation(900.0, 6), Recommendation(950.0, 9)]
    assert behavior.stabilize(10, current=4, recommendations=recs, spec=spec, now=1000.0) == 6


@pytest.mark.parametrize(
    ("direction", "current", "events", "expected"),
    [
        pytest.param(UP_FAST, 10, [], 20, id="max-of-plus4-and-double"),
        pytest.param(UP_FAST, 2, [], 6, id="plus4-wins-when-small"),
        pytest.param(
            ScalingDirection(0, UP_FAST.rules, SelectPolicy.MIN), 10, [], 14, id="min-policy"
        ),
        pytest.param(
            ScalingDirection(0, UP_FAST.rules, SelectPolicy.DISABLED), 10, [], 10, id="disabled"
        ),
        pytest.param(UP_FAST, 8, [(990, 4, 8)], 8, id="period-counts-earlier-growth"),
        pytest.param(UP_FAST, 8, [(980, 4, 8)], 16, id="growth-outside-period-forgotten"),
        pytest.param(
            ScalingDirection(0, (ScalingRule(RuleType.PERCENT, 50, 60),)),
            3,
            [],
            5,
            id="percent-rounds-up",
        ),
    ],
)
def test_scale_up_limit(
    direction: ScalingDirection, current: int, events: list[tuple[int, int, int]], expected: int
) -> None:
    history = tuple(ScaleEvent(float(t), a, b) for t, a, b in events)
    assert behavior.scale_up_limit(current, history, direction, 1000.0) == expected


@pytest.mark.parametrize(
    ("rules", "current", "events", "expected"),
    [
        pytest.param((ScalingRule(RuleType.PERCENT, 100, 15),), 10, [], 0, id="hpa-default"),
        pytest.param((ScalingRule(RuleType.PODS, 1, 60),), 10, [], 9, id="one-pod-a-minute"),
        pytest.param((ScalingRule(RuleType.PODS, 1, 60),), 9, [(970, 10, 9)], 9, id="used-up"),
        pytest.param((ScalingRule(RuleType.PERCENT, 10, 60),), 10, [], 9, id="percent-floors"),
    ],
)
def test_scale_down_limit(
    rules: tuple[ScalingRule, ...], current: int, events: list[tuple[int, int, int]], expected: int
) -> None:
    history = tuple(ScaleEvent(float(t), a, b) for t, a, b in events)
    direction = ScalingDirection(300, rules)
    assert behavior.scale_down_limit(current, history, direction, 1000.0) == expected


@pytest.mark.parametrize(
    ("desired", "current", "expected", "reason"),
    [
        pytest.param(50, 5, 10, "ScaleUpLimit", id="rate"),
        pytest.param(50, 18, 20, "TooManyReplicas", id="max"),
        pytest.param(0, 4, 1, "TooFewReplicas", id="min"),
        pytest.param(7, 5, 7, None, id="within"),
    ],
)
def test_limit_rate_says_what_limited(
    desired: int, current: int, expected: int, reason: str | None
) -> None:
    got, why = behavior.limit_rate(
        desired, current=current, events=(), spec=make_spec(), min_allowed=1, now=1000.0
    )
    assert (got, why) == (expected, reason)
