"""The calibration's probe against the reference steady state it stands in for."""

from __future__ import annotations

import pytest

from lmscale.planner import performance, plan
from lmscale.sim import calibrate, probe
from lmscale.sim.engine import StepModel
from lmscale.sim.results import Slo

from .fakes import LinearStep

SLO = Slo(ttft_seconds=1.0, tpot_seconds=0.05)
LENGTHS = [(100, 20), (300, 40), (1200, 1), (500, 120)]


def _probe(perf: LinearStep, rate: float, requests: int, **kwargs: float) -> probe.Outcome:
    draws = probe.Draws.make(LENGTHS, requests=requests, seed=3)
    return probe.run(perf, draws, rate=rate, ttft_limit=SLO.ttft_seconds,
                     tpot_limit=SLO.tpot_seconds, replicas=4, requests=requests, **kwargs)


@pytest.mark.parametrize("perf", [
    pytest.param(LinearStep(per_sequence=0.001), id="roomy"),
    pytest.param(LinearStep(per_sequence=0.001, per_cached_token=1e-7, max_num_seqs=8,
                            kv_capacity_tokens=6000, max_num_batched_tokens=512),
                 id="small-batch-and-cache"),
])
@pytest.mark.parametrize("rate", [0.3, 0.8, 1.2, 2.0])
def test_probe_gives_the_reference_figures_exactly(perf: LinearStep, rate: float) -> None:
    """The same steps in the same order: equal floats, not just close ones."""
    reference = calibrate.steady_state(perf, LENGTHS, rate=rate, slo=SLO, replicas=4,
                                       requests=1500, seed=3)
    found = _probe(perf, rate, 1500)
    assert not found.stopped
    assert (found.attainment, found.in_flight, found.ttft_p95) == (
        reference.attainment, reference.in_flight, reference.ttft_p95)


def test_a_probe_below_the_floor_stops_early_with_the_same_verdict() -> None:
    perf = LinearStep(per_sequence=0.001)
    whole = _probe(perf, 1.2, 1500)
    floor = whole.attainment + 0.05
    stopped = _probe(perf, 1.2, 1500, stop_below=floor)
    assert stopped.stopped
    assert stopped.attainment < floor


def test_a_probe_above_the_floor_runs_to_the_end() -> None:
    perf = LinearStep(per_sequence=0.001)
    whole = _probe(perf, 0.8, 1500)
    assert _probe(perf, 0.8, 1500, stop_below=whole.attainment) == whole


def test_a_stopped_probe_resumes_for_a_lower_floor() -> None:
    perf = LinearStep(per_sequence=0.001)
    whole = _probe(perf, 1.2, 1500)
    draws = probe.Draws.make(LENGTHS, requests=1500, seed=3)
    run = probe.Probe(perf, draws, rate=1.2, ttft_limit=SLO.ttft_seconds,
                      tpot_limit=SLO.tpot_seconds, replicas=4, requests=1500)
    assert run.finish(stop_below=whole.attainment + 0.05).stopped
    assert run.finish(stop_below=0.0) == whole


def test_a_late_first_token_counts_before_its_request_finishes() -> None:
    """Long outputs under overload: TTFT misses are certain long before those requests
    finish, so the probe stops within the first half of the sample, with the verdict of
    the whole run."""
    perf = LinearStep(per_sequence=0.001, max_num_seqs=8)
    lengths = [(400, 400), (800, 600)]
    draws = probe.Draws.make(lengths, requests=1500, seed=3)

    def run() -> probe.Probe:
        return probe.Probe(perf, draws, rate=3.0, ttft_limit=SLO.ttft_seconds,
                           tpot_limit=SLO.tpot_seconds, replicas=4, requests=1500)

    whole = run().finish()
    early = run()
    stopped = early.finish(stop_below=0.9)
    assert whole.attainment < 0.9
    assert stopped.stopped and stopped.attainment < 0.9
    assert early.submitted <= 750


@pytest.mark.parametrize("perf", [
    pytest.param(LinearStep(per_sequence=0.001), id="roomy"),
    pytest.param(LinearStep(per_sequence=0.001, per_cached_token=1e-7, max_num_seqs=8,
                            kv_capacity_tokens=6000, max_num_batched_tokens=512),
                 id="small-batch-and-cache"),
    pytest.param(performance.replica_performance(plan.plan_replica("llama-3.1-8b",
                                                                   "nvidia-h100-80gb")),
                 id="planner-llama-3.1-8b-h100"),
])
def test_a_request_alone_takes_the_replicas_own_times(perf: StepModel) -> None:
    """`solo` adds up the steps without a replica: the same floats."""
    for prompt, output in [(1, 1), (1, 2), (300, 40), (512, 1), (513, 2), (2000, 900)]:
        assert probe.solo(perf, prompt, output) == probe._solo_replica(perf, prompt, output)
