"""Never scale down on data we do not have; the modes for missing metrics."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lmscale.policy import (
    DecisionReason,
    MissingMetricsMode,
    Observation,
    ScalingHistory,
    decide,
)

from .builders import NO_WINDOW, make_observation, make_spec


@pytest.mark.parametrize(
    ("mode", "observation", "expected", "reason"),
    [
        pytest.param(
            MissingMetricsMode.HOLD,
            make_observation(waiting=None, running=None),
            4,
            DecisionReason.MISSING_METRICS,
            id="hold-keeps-replicas",
        ),
        pytest.param(
            MissingMetricsMode.SCALE_UP_ONLY,
            make_observation(waiting=None, running=None),
            4,
            DecisionReason.MISSING_METRICS_SCALE_UP_ONLY,
            id="up-only-never-down",
        ),
        pytest.param(
            MissingMetricsMode.SCALE_UP_ONLY,
            make_observation(waiting=70.0, running=None),
            7,
            DecisionReason.MISSING_METRICS_SCALE_UP_ONLY,
            id="up-only-scales-on-partial-load",
        ),
        pytest.param(
            MissingMetricsMode.SCALE_UP_ONLY,
            make_observation(waiting=None, running=None, ttft_p95_seconds=3.0),
            5,
            DecisionReason.SLO_BREACH,
            id="up-only-follows-slo-breach",
        ),
        pytest.param(
            MissingMetricsMode.FALLBACK,
            make_observation(waiting=None, running=None),
            4,
            DecisionReason.MISSING_METRICS,
            id="fallback-waits-for-threshold",
        ),
    ],
)
def test_missing_metrics_first_cycle(
    mode: MissingMetricsMode, observation: Observation, expected: int, reason: DecisionReason
) -> None:
    spec = make_spec(
        on_missing_metrics=mode,
        fallback_replicas=2,
        ttft_p95_target_seconds=1.0,
        scale_down=NO_WINDOW,
    )
    decision = decide(spec, observation, ScalingHistory(), now=100.0)
    assert (decision.replicas, decision.reason) == (expected, reason)


@pytest.mark.parametrize(
    ("cycles", "expected", "reason"),
    [
        pytest.param(1, 4, DecisionReason.MISSING_METRICS, id="one-miss-holds"),
        pytest.param(3, 2, DecisionReason.MISSING_METRICS_FALLBACK, id="three-misses-fall-back"),
    ],
)
def test_fallback_after_consecutive_misses(
    cycles: int, expected: int, reason: DecisionReason
) -> None:
    spec = make_spec(
        on_missing_metrics=MissingMetricsMode.FALLBACK, fallback_replicas=2, scale_down=NO_WINDOW
    )
    history = ScalingHistory()
    observation = make_observation(waiting=None, running=None)
    for cycle in range(cycles):
        decision = decide(spec, observation, history, now=100.0 + 10 * cycle)
        history = decision.history
    assert (decision.replicas, decision.reason) == (expected, reason)


def test_metrics_returning_reset_the_miss_count() -> None:
    spec = make_spec(on_missing_metrics=MissingMetricsMode.FALLBACK, fallback_replicas=2)
    missing = decide(spec, make_observation(waiting=None), ScalingHistory(), now=0.0)
    assert missing.history.missing_cycles == 1
    back = decide(spec, make_observation(), missing.history, now=10.0)
    assert back.history.missing_cycles == 0


def test_fallback_needs_replicas() -> None:
    with pytest.raises(ValueError, match="fallback_replicas"):
        make_spec(on_missing_metrics=MissingMetricsMode.FALLBACK)


@pytest.mark.parametrize(
    ("signal", "reason"),
    [
        pytest.param({"gpu_utilization": 0.95}, DecisionReason.GPU_UTILIZATION_HIGH, id="gpu"),
        pytest.param({"kv_cache_usage": 0.95}, DecisionReason.KV_CACHE_FULL, id="kv-cache"),
        pytest.param({"ttft_p95_seconds": 1.05}, DecisionReason.SLO_BREACH, id="ttft"),
        pytest.param({"tpot_p95_seconds": 0.105}, DecisionReason.SLO_BREACH, id="tpot"),
    ],
)
def test_secondary_signals_veto_a_scale_down(
    signal: dict[str, float], reason: DecisionReason
) -> None:
    spec = make_spec(gpu_utilization_target=0.7, ttft_p95_target_seconds=1.0,
                     tpot_p95_target_seconds=0.1, scale_down=NO_WINDOW)
    observation = replace(make_observation(running=10.0), **signal)
    decision = decide(spec, observation, ScalingHistory(), now=0.0)
    assert (decision.replicas, decision.reason) == (4, reason)


def test_gpu_utilisation_never_scales_up_alone() -> None:
    spec = make_spec(gpu_utilization_target=0.7)
    observation = replace(make_observation(running=40.0), gpu_utilization=1.0)
    assert decide(spec, observation, ScalingHistory(), now=0.0).replicas == 4
