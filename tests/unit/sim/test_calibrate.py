"""Calibration on the engine model: steady states, the load curve, synthetic lengths."""

from __future__ import annotations

import pytest

from lmscale.sim import calibrate
from lmscale.sim.results import Slo

from .fakes import LinearStep

PERF = LinearStep(per_sequence=0.001)
LENGTHS = [(100, 20), (300, 40)]


def test_load_raises_in_flight_and_lowers_attainment() -> None:
    slo = Slo(ttft_seconds=1.0, tpot_seconds=0.05)
    light = calibrate.steady_state(PERF, LENGTHS, rate=1.0, slo=slo, requests=2000)
    heavy = calibrate.steady_state(PERF, LENGTHS, rate=6.0, slo=slo, requests=2000)
    assert light.attainment == 1.0
    assert heavy.attainment < light.attainment
    assert heavy.in_flight > 6 * light.in_flight  # batching slows down as batches grow
    assert 0.0 < light.ttft_p95 < heavy.ttft_p95


def test_load_curve_keeps_rising_points_up_to_the_limit() -> None:
    states = {
        rate: calibrate.SteadyState(1.0, in_flight, 0.1)
        for rate, in_flight in [(1.0, 2.0), (2.0, 5.0), (3.0, 4.0), (4.0, 9.0), (9.0, 50.0)]
    }
    assert calibrate.load_curve(states, up_to=5.0) == ((2.0, 1.0), (5.0, 2.0), (9.0, 4.0))


def test_lengths_from_means() -> None:
    lengths = calibrate.lengths_from_means(1000, 200, count=20000)
    prompts = sum(p for p, _ in lengths) / len(lengths)
    outputs = sum(o for _, o in lengths) / len(lengths)
    assert prompts == pytest.approx(1000, rel=0.05)
    assert outputs == pytest.approx(200, rel=0.05)


def test_calibration_states_its_band_top_in_prompt_tokens() -> None:
    found = calibrate.calibrate(PERF, LENGTHS, slo=Slo(ttft_seconds=1.0, tpot_seconds=0.05))
    assert found.prompt_tokens_rate == pytest.approx(found.rate * 200)  # mean prompt 200


def test_band_top_meets_both_loss_rules_and_a_busier_rate_breaks_one() -> None:
    slo = Slo(ttft_seconds=1.0, tpot_seconds=0.05)
    found = calibrate.calibrate(PERF, LENGTHS, slo=slo, goal=0.99, tolerance=0.1)
    idle = calibrate.steady_state(PERF, LENGTHS, rate=calibrate.IDLE_RATE, slo=slo).attainment

    def loss(rate: float) -> float:
        return idle - calibrate.steady_state(PERF, LENGTHS, rate=rate, slo=slo).attainment

    def within_rules(rate: float) -> bool:
        return loss(rate) <= calibrate.STEADY_SHARE * 0.01 and loss(rate * 1.1) <= 0.01

    assert within_rules(found.rate)
    assert not within_rules(found.rate * 1.05)
    assert found.target == pytest.approx(
        calibrate.steady_state(PERF, LENGTHS, rate=found.rate, slo=slo).in_flight / 1.1)


def test_load_curve_ends_at_the_busiest_rate_the_loss_rules_measured() -> None:
    """Past it a fleet queues without bound: no steady state to map in-flight counts by."""
    found = calibrate.calibrate(PERF, LENGTHS, slo=Slo(ttft_seconds=1.0, tpot_seconds=0.05))
    assert found.curve[-1][1] == pytest.approx(found.rate * 1.1, rel=1e-5)


def test_a_wider_tolerance_band_lowers_the_band_top() -> None:
    """The second rule looks one band past the top: a wider band must start lower."""
    slo = Slo(ttft_seconds=1.0, tpot_seconds=0.05)
    narrow = calibrate.calibrate(PERF, LENGTHS, slo=slo, tolerance=0.05)
    wide = calibrate.calibrate(PERF, LENGTHS, slo=slo, tolerance=0.3)
    assert wide.rate < narrow.rate
