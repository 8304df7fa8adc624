"""Scale from zero through decide(): the activator's queue and wake request as the load at
zero, missing metrics only when the activator is silent too, and no fallback loop."""

from __future__ import annotations

import pytest

from lmscale.policy import (
    DecisionReason,
    MissingMetricsMode,
    Observation,
    ScalingHistory,
    decide,
)

from .builders import NO_WINDOW, make_observation, make_spec


def at_zero(**extra: float | None) -> Observation:
    """Zero replicas: no engine exports anything."""
    return Observation(spec_replicas=0, ready_replicas=0, waiting=None, running=None,
                       **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(("observation", "expected", "reason"), [
    pytest.param(at_zero(held=1.0), 1, DecisionReason.ACTIVATE_FROM_ZERO,
                 id="one-held-request-wakes"),
    pytest.param(at_zero(held=35.0), 4, DecisionReason.ACTIVATE_FROM_ZERO,
                 id="sized-for-the-held-queue"),
    pytest.param(at_zero(held=0.0), 0, DecisionReason.IDLE_SCALE_TO_ZERO,
                 id="activator-reports-nothing-held"),
    pytest.param(at_zero(wake_requested_at=95.0), 1, DecisionReason.ACTIVATE_FROM_ZERO,
                 id="wake-request-before-any-scrape"),
    pytest.param(at_zero(wake_requested_at=10.0), 0, DecisionReason.MISSING_METRICS,
                 id="stale-wake-request"),
])  # fmt: skip
def test_the_activator_is_the_load_at_zero(observation: Observation, expected: int,
                                           reason: DecisionReason) -> None:
    spec = make_spec(scale_to_zero=True)
    decision = decide(spec, observation, ScalingHistory(), now=100.0)
    assert (decision.replicas, decision.reason) == (expected, reason)


def test_at_zero_a_reporting_activator_is_not_missing_metrics() -> None:
    spec = make_spec(scale_to_zero=True, on_missing_metrics=MissingMetricsMode.FALLBACK,
                     fallback_replicas=2)
    history = ScalingHistory()
    for cycle in range(6):
        decision = decide(spec, at_zero(held=0.0), history, now=10.0 * cycle)
        history = decision.history
        assert decision.replicas == 0
    assert history.missing_cycles == 0


def test_a_wake_request_older_than_the_last_scale_to_zero_wakes_nothing() -> None:
    spec = make_spec(scale_to_zero=True, idle_seconds=60.0, scale_down=NO_WINDOW)
    idle = decide(spec, make_observation(replicas=1, waiting=0.0, running=0.0),
                  ScalingHistory(last_active_time=0.0), now=100.0)
    assert (idle.replicas, idle.history.zero_since) == (0, 100.0)
    old = decide(spec, at_zero(wake_requested_at=99.0), idle.history, now=110.0)
    assert old.replicas == 0
    new = decide(spec, at_zero(wake_requested_at=105.0), idle.history, now=110.0)
    assert (new.replicas, new.reason) == (1, DecisionReason.ACTIVATE_FROM_ZERO)
    assert new.history.zero_since is None
    restored = ScalingHistory.from_json(idle.history.to_json())
    assert restored.zero_since == 100.0


def test_fallback_does_not_wake_a_model_that_idled_to_zero() -> None:
    """The loop: idle -> zero -> no series -> fallback wakes it -> idle -> zero -> ..."""
    spec = make_spec(scale_to_zero=True, idle_seconds=60.0, scale_down=NO_WINDOW,
                     on_missing_metrics=MissingMetricsMode.FALLBACK, fallback_replicas=1)
    decision = decide(spec, make_observation(replicas=1, waiting=0.0, running=0.0),
                      ScalingHistory(last_active_time=0.0), now=100.0)
    assert decision.replicas == 0
    history, replicas = decision.history, []
    for cycle in range(1, 200):  # a long idle spell, past every history horizon
        decision = decide(spec, at_zero(), history, now=100.0 + 10.0 * cycle)
        history = decision.history
        replicas.append(decision.replicas)
    assert set(replicas) == {0}
    assert decision.reason is DecisionReason.IDLE_SCALE_TO_ZERO


def test_fallback_still_applies_when_zero_was_not_reached_by_idling() -> None:
    spec = make_spec(scale_to_zero=True, on_missing_metrics=MissingMetricsMode.FALLBACK,
                     fallback_replicas=2)
    history = ScalingHistory()
    for cycle in range(4):
        decision = decide(spec, at_zero(), history, now=10.0 * cycle)
        history = decision.history
    assert (decision.replicas, decision.reason) == (2, DecisionReason.MISSING_METRICS_FALLBACK)


def test_the_front_door_arrival_rate_sizes_the_wake() -> None:
    """Two held requests, but 30 requests/s arriving at 10 requests/s per replica: 3."""
    spec = make_spec(scale_to_zero=True, load_curve=((10.0, 10.0), (20.0, 20.0)))
    assert spec.rate_at_target == 10.0
    quiet = decide(spec, at_zero(held=2.0), ScalingHistory(), now=100.0)
    busy = decide(spec, at_zero(held=2.0, front_arrivals_per_second=30.0), ScalingHistory(),
                  now=100.0)
    assert (quiet.replicas, busy.replicas) == (1, 3)
    assert "30.00 requests/s arriving" in busy.message


def test_requests_still_held_keep_a_woken_model_from_idling_back() -> None:
    spec = make_spec(scale_to_zero=True, idle_seconds=60.0, scale_down=NO_WINDOW)
    history = ScalingHistory(last_active_time=0.0)
    idle = make_observation(replicas=1, waiting=0.0, running=0.0)
    assert decide(spec, idle, history, now=100.0).replicas == 0
    asking = make_observation(replicas=1, waiting=0.0, running=0.0, wake_requested_at=95.0)
    assert decide(spec, asking, history, now=100.0).replicas == 1
    held = make_observation(replicas=1, waiting=0.0, running=0.0, held=3.0)
    assert decide(spec, held, history, now=100.0).replicas == 1
