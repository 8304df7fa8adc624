"""Calibration on the engine model: steady states, the load curve, synthetic lengths."""

from __future__ import annotations

import math

import pytest

from lmscale.sim import calibrate, probe
from lmscale.sim.engine import ReplicaEngine
from lmscale.sim.request import CompletedRequest, Request
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


def test_idle_state_serves_each_request_alone() -> None:
    """The idle state from each length served alone on the engine model, placed at its
    arrival: the same floats as `CompletedRequest`s summed by the reference's `_state`."""
    slo = Slo(ttft_seconds=0.3, tpot_seconds=0.05)
    lengths = [(100, 20), (300, 40), (250, 1), (50, 300)]
    idle = calibrate.idle_state(PERF, lengths, slo=slo, requests=3000)
    steady = []
    for serial, (arrival, prompt, output) in enumerate(calibrate._draws(
            lengths, rate=calibrate.IDLE_RATE, replicas=calibrate.FLEET, requests=3000,
            seed=0)):
        engine = ReplicaEngine(PERF)
        engine.submit(Request(0.0, prompt, output), 0.0)
        alone = engine.advance(math.inf)[0]
        if serial >= 300:
            steady.append(CompletedRequest(Request(arrival, prompt, output),
                                           arrival + alone.admitted_s,
                                           arrival + alone.first_token_s,
                                           arrival + alone.finished_s))
    assert idle == calibrate._state(steady, rate=calibrate.IDLE_RATE, slo=slo)
    assert 0.7 < idle.attainment < 1.0  # 300-token prompts take longer than 0.3 s alone
    # Close to the fleet's own figures at that rate (a request now and then arrives at a
    # replica whose clock is a step past it).
    reference = calibrate.steady_state(PERF, lengths, rate=calibrate.IDLE_RATE, slo=slo,
                                       requests=3000)
    assert idle.attainment == pytest.approx(reference.attainment, abs=0.002)


def test_headroom_is_the_objective_over_the_idle_latency_at_the_attainment() -> None:
    draws = probe.Draws.make(LENGTHS, requests=1000, seed=0)
    # Alone, a 300-token prompt's first token takes 0.01 + 300 * 0.001 s.
    room = calibrate.headroom(PERF, draws, slo=Slo(ttft_seconds=0.62, tpot_seconds=None),
                              attainment=0.99, requests=1000)
    assert room == pytest.approx(2.0)
    assert calibrate.headroom(PERF, draws, slo=Slo(ttft_seconds=None, tpot_seconds=None),
                              attainment=0.99, requests=1000) == math.inf


def test_where_the_steady_rule_binds_the_band_top_meets_both_rules_too() -> None:
    """A TTFT objective close to the idle one: the loss grows with any load, so the steady
    rule binds well below saturation."""
    slo = Slo(ttft_seconds=0.45, tpot_seconds=0.05)
    found = calibrate.calibrate(PERF, LENGTHS, slo=slo, goal=0.99, tolerance=0.1)
    idle = calibrate.steady_state(PERF, LENGTHS, rate=calibrate.IDLE_RATE, slo=slo).attainment

    def loss(rate: float) -> float:
        return idle - calibrate.steady_state(PERF, LENGTHS, rate=rate, slo=slo).attainment

    assert loss(found.rate) <= calibrate.STEADY_SHARE * 0.01
    assert loss(found.rate * 1.1) <= 0.01
    assert loss(found.rate * 1.05) > calibrate.STEADY_SHARE * 0.01 or loss(
        found.rate * 1.05 * 1.1) > 0.01
