"""Behaviour over cycles: the cold-start guard, SLO pushes, start-up learning, scale to zero."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lmscale.policy import (
    DecisionReason,
    Observation,
    ScaleEvent,
    ScalingHistory,
    ScalingPolicySpec,
    decide,
)

from .builders import NO_WINDOW, make_observation, make_spec


def fleet(
    *, spec: int, ready: int, waiting: float, running: float, ages: float = 30.0, **extra: float
) -> Observation:
    starting = spec - ready
    base = Observation(
        spec_replicas=spec,
        ready_replicas=ready,
        starting_replicas=starting,
        starting_ages=(ages,) * starting,
        waiting=waiting,
        running=running,
    )
    return replace(base, **extra)


def burst(spec: ScalingPolicySpec, *, cycles: int) -> list[int]:
    """2 ready replicas, a burst the engines queue up while new replicas load."""
    history, replicas, out = ScalingHistory(), 2, []
    for cycle in range(cycles):
        now = 10.0 * cycle
        waiting = 40.0 + 60.0 * cycle  # the queue keeps growing: capacity is not there yet
        observation = fleet(spec=replicas, ready=2, waiting=waiting, running=20.0, ages=now)
        decision = decide(spec, observation, history, now=now)
        history, replicas = decision.history, decision.replicas
        out.append(replicas)
    return out


def test_cold_start_guard_stops_the_cascade() -> None:
    """2 -> 6 once; the queue growing while replicas load asks for no more."""
    spec = make_spec(max_replicas=64, startup_seconds=120.0, trend_window_seconds=0.0)
    assert burst(spec, cycles=10) == [6] * 10


def test_without_starting_ages_every_starting_pod_is_on_the_way() -> None:
    spec = make_spec(startup_seconds=120.0, trend_window_seconds=0.0)
    observation = Observation(
        spec_replicas=6, ready_replicas=2, starting_replicas=4, waiting=100.0, running=20.0
    )
    history = replace(ScalingHistory(), guard_waiting=40.0, guard_until=1e9)
    assert decide(spec, observation, history, now=50.0).replicas == 6


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        pytest.param(60.0, 6, id="young-pods-are-capacity-on-the-way"),
        pytest.param(400.0, 12, id="stalled-pods-are-not"),
    ],
)
def test_stalled_starting_pods_do_not_hold_back_scale_up(age: float, expected: int) -> None:
    spec = make_spec(startup_seconds=120.0, trend_window_seconds=0.0, load_window_seconds=0.0)
    observation = fleet(spec=6, ready=2, waiting=100.0, running=20.0, ages=age)
    history = replace(ScalingHistory(), guard_waiting=40.0, guard_until=0.0)
    assert decide(spec, observation, history, now=500.0).replicas == expected


def test_backlog_grace_after_replicas_turn_ready() -> None:
    """Just after the new replicas are ready, the old queue is not new demand."""
    spec = make_spec(trend_window_seconds=0.0, load_window_seconds=0.0)
    history = replace(ScalingHistory(), guard_waiting=20.0, guard_until=130.0)
    observation = fleet(spec=6, ready=6, waiting=300.0, running=40.0)
    assert decide(spec, observation, history, now=100.0).replicas == 6
    after = decide(spec, observation, replace(history, guard_until=90.0), now=100.0)
    assert after.replicas == 12  # 34 wanted, +100% per 15 s


@pytest.mark.parametrize(
    ("ttft", "settling", "expected", "reason"),
    [
        pytest.param(2.0, False, 5, DecisionReason.SLO_BREACH, id="breach-pushes-up"),
        pytest.param(1.05, False, 4, DecisionReason.WITHIN_TOLERANCE, id="within-tolerance"),
        pytest.param(2.0, True, 4, DecisionReason.WITHIN_TOLERANCE, id="not-while-settling"),
    ],
)
def test_slo_breach_pushes_up(
    ttft: float, settling: bool, expected: int, reason: DecisionReason
) -> None:
    spec = make_spec(ttft_p95_target_seconds=1.0)
    history = ScalingHistory()
    if settling:
        history = ScalingHistory(scale_events=(ScaleEvent(950.0, 3, 4),))
    observation = replace(make_observation(running=40.0), ttft_p95_seconds=ttft)
    decision = decide(spec, observation, history, now=1000.0)
    assert (decision.replicas, decision.reason) == (expected, reason)


@pytest.mark.parametrize(
    ("ttft", "tpot", "settling", "expected", "reason", "says"),
    [
        pytest.param(0.5, 0.2, False, 5, DecisionReason.SLO_BREACH, "TPOT p95 200 ms",
                     id="tpot-breach-pushes-up-with-ttft-fine"),
        pytest.param(0.5, 0.105, False, 4, DecisionReason.WITHIN_TOLERANCE, "",
                     id="tpot-within-tolerance"),
        pytest.param(0.5, 0.2, True, 4, DecisionReason.WITHIN_TOLERANCE, "",
                     id="tpot-not-while-settling"),
        pytest.param(1.2, 0.4, False, 5, DecisionReason.SLO_BREACH, "TPOT p95 400 ms",
                     id="the-worse-breach-is-named"),
        pytest.param(0.5, None, False, 4, DecisionReason.WITHIN_TOLERANCE, "",
                     id="tpot-missing-pushes-nothing"),
    ],
)
def test_tpot_breach_pushes_up_like_ttft(
    ttft: float, tpot: float | None, settling: bool, expected: int, reason: DecisionReason,
    says: str,
) -> None:
    spec = make_spec(ttft_p95_target_seconds=1.0, tpot_p95_target_seconds=0.1)
    history = ScalingHistory()
    if settling:
        history = ScalingHistory(scale_events=(ScaleEvent(950.0, 3, 4),))
    observation = replace(make_observation(running=40.0), ttft_p95_seconds=ttft,
                          tpot_p95_seconds=tpot)
    decision = decide(spec, observation, history, now=1000.0)
    assert (decision.replicas, decision.reason) == (expected, reason)
    assert says in decision.message


def test_a_tpot_breach_while_replicas_start_holds_a_scale_down() -> None:
    spec = make_spec(tpot_p95_target_seconds=0.1, scale_down=NO_WINDOW)
    observation = replace(fleet(spec=5, ready=4, waiting=0.0, running=10.0),
                          tpot_p95_seconds=0.3)
    decision = decide(spec, observation, ScalingHistory(), now=1000.0)
    assert decision.replicas == 5


def test_startup_time_is_learned_from_readiness() -> None:
    spec = make_spec(startup_seconds=100.0)
    observation = replace(make_observation(), startup_samples=(200.0,))
    decision = decide(spec, observation, ScalingHistory(), now=0.0)
    assert decision.history.learned_startup_seconds == pytest.approx(130.0)


@pytest.mark.parametrize(
    ("enabled", "idle_for", "expected", "reason"),
    [
        pytest.param(False, 2000.0, 1, DecisionReason.TOO_FEW_REPLICAS, id="off-by-default"),
        pytest.param(True, 100.0, 1, DecisionReason.TOO_FEW_REPLICAS, id="not-idle-long-enough"),
        pytest.param(True, 2000.0, 0, DecisionReason.IDLE_SCALE_TO_ZERO, id="idle-goes-to-zero"),
    ],
)
def test_scale_to_zero_after_an_idle_window(
    enabled: bool, idle_for: float, expected: int, reason: DecisionReason
) -> None:
    spec = make_spec(scale_to_zero=enabled, idle_seconds=900.0, scale_down=NO_WINDOW)
    history = ScalingHistory(last_active_time=0.0)
    observation = make_observation(replicas=1, waiting=0.0, running=0.0)
    decision = decide(spec, observation, history, now=idle_for)
    assert (decision.replicas, decision.reason) == (expected, reason)


@pytest.mark.parametrize(
    ("waiting", "expected", "reason"),
    [
        pytest.param(0.0, 0, DecisionReason.IDLE_SCALE_TO_ZERO, id="stays-at-zero"),
        pytest.param(3.0, 1, DecisionReason.ACTIVATE_FROM_ZERO, id="first-request-activates"),
        pytest.param(35.0, 4, DecisionReason.ACTIVATE_FROM_ZERO, id="sized-for-the-queue"),
    ],
)
def test_activation_from_zero(waiting: float, expected: int, reason: DecisionReason) -> None:
    spec = make_spec(scale_to_zero=True)
    observation = Observation(spec_replicas=0, ready_replicas=0, waiting=waiting, running=0.0)
    decision = decide(spec, observation, ScalingHistory(), now=0.0)
    assert (decision.replicas, decision.reason) == (expected, reason)


def test_load_is_averaged_over_the_window() -> None:
    """One scrape's spike does not start replicas; a sustained load does."""
    spec = make_spec(trend_window_seconds=0.0)
    history = ScalingHistory()
    for now, running in ((0.0, 40.0), (10.0, 40.0), (20.0, 40.0)):
        history = decide(spec, make_observation(running=running), history, now=now).history
    spike = decide(spec, make_observation(running=80.0), history, now=30.0)
    assert spike.replicas == 5  # mean of 40, 40, 40, 80 is 50: 5 replicas, not 8


@pytest.mark.parametrize(
    ("trend_window", "expected"),
    [
        pytest.param(300.0, 8, id="sized-for-the-load-one-startup-ahead"),
        pytest.param(0.0, 7, id="trend-off"),
    ],
)
def test_rising_load_is_sized_one_startup_ahead(trend_window: float, expected: int) -> None:
    spec = make_spec(
        startup_seconds=100.0, load_window_seconds=10.0, trend_window_seconds=trend_window
    )
    history = ScalingHistory()
    for step in range(31):  # +1 in-flight request per 10 s for five minutes
        observation = make_observation(replicas=4, running=40.0 + step)
        decision = decide(spec, observation, history, now=10.0 * step)
        history = decision.history
    # 70 in flight now, rising 0.1/s: 80 expected in 100 s, at 10 per replica.
    assert decision.recommendation == expected
