"""`gpusPerReplica: auto`: the degree with the lowest cost per request at the SLO."""

from __future__ import annotations

import math
import re

import pytest

from lmscale.planner import auto, catalog, parallelism, performance, plan

pytestmark = pytest.mark.calibrated

CHAT = auto.Workload(ttft_p95_s=1.0, tpot_p95_s=0.1, mean_prompt_tokens=1024,
                     mean_output_tokens=256)
INTERACTIVE = auto.Workload(ttft_p95_s=0.5, tpot_p95_s=0.05, mean_prompt_tokens=1024,
                            mean_output_tokens=256)


def _plans(model: str, gpu: str, context: int) -> list[plan.CapacityPlan]:
    arch, card = catalog.default().model(model), catalog.default().gpu(gpu)
    return [plan.plan_replica(arch, card, context=context, gpus_per_replica=tp)
            for tp in parallelism.valid_tp_degrees(arch, card)]


def test_70b_on_h100_at_8k_takes_4_or_8_gpus_and_says_why() -> None:
    arch = catalog.default().model("llama-3.1-70b")
    chosen = auto.plan_auto(arch, [catalog.default().gpu("nvidia-h100-80gb")], INTERACTIVE,
                            context=8192)
    assert chosen.gpus_per_replica in (4, 8)
    reason = chosen.degree_reason or ""
    assert reason.startswith(f"{chosen.gpus_per_replica} GPUs per replica")
    assert "the capacity of 2 GPUs for 0.5x the price" not in reason  # price ratios are > 1
    assert re.search(r"\d\.\dx the capacity of 2 GPUs( \(estimated\))? for [24]x the price", reason)
    assert chosen.to_dict()["gpus_per_replica_reason"] == reason
    assert [c["gpus_per_replica"] for c in chosen.to_dict()["gpus_per_replica_candidates"]] == [
        2, 4, 8]


@pytest.mark.parametrize(
    ("model", "gpu", "context", "workload"),
    [
        # Interactive: where the mean-latency estimate alone would pick 4 and 8 is 30% cheaper.
        pytest.param("llama-3.1-70b", "nvidia-h100-80gb", 8192, INTERACTIVE,
                     id="70b-h100-interactive"),
    ],
)
def test_auto_is_never_more_than_5_percent_above_the_cheapest_degree(
    model: str, gpu: str, context: int, workload: auto.Workload
) -> None:
    """Checked against every fitting degree calibrated (no screen), as the autoscaler would."""
    plans = _plans(model, gpu, context)
    screened = auto.choose(plans, workload)
    everything = auto.choose(plans, workload, screen=math.inf)
    assert screened is not None and everything is not None
    # Each degree's cost per request from the scaler's calibration, computed here directly.
    costs = {p.gpus_per_replica: p.cost_per_hour / 3600
             / auto.calibrated_rps(performance.replica_performance(p), workload)
             for p in plans if p.fits}
    cheapest = min(costs.values())
    for choice in (screened, everything):
        assert costs[choice.plan.gpus_per_replica] <= cheapest * 1.05, (
            f"{choice.plan.gpus_per_replica} GPUs cost {costs} per request")


def test_a_tie_goes_to_fewer_gpus() -> None:
    plans = _plans("llama-3.1-8b", "nvidia-h100-80gb", 8192)
    # Every degree carries requests in proportion to its GPUs: the same cost per request.
    choice = auto.choose(plans, CHAT, screen=math.inf,
                         measure=lambda perf, _: 10.0 * perf.gpus)
    assert choice is not None and choice.plan.gpus_per_replica == 1


def test_the_cheapest_measured_degree_wins_whatever_the_estimate() -> None:
    plans = _plans("llama-3.1-8b", "nvidia-h100-80gb", 8192)
    choice = auto.choose(plans, CHAT, screen=math.inf,
                         measure=lambda perf, _: 100.0 if perf.gpus == 2 else 1.0)
    assert choice is not None and choice.plan.gpus_per_replica == 2
    assert "1 GPUs" not in choice.reason and "the capacity of 1 GPU for 2x" in choice.reason


def test_a_lone_candidate_is_not_calibrated() -> None:
    plans = _plans("llama-3.1-8b", "nvidia-h100-80gb", 8192)[:1]

    def fail(*_: object) -> float:
        raise AssertionError("calibrated a choice of one")

    choice = auto.choose(plans, CHAT, measure=fail)
    assert choice is not None and choice.plan.gpus_per_replica == 1


def test_nothing_fits() -> None:
    assert auto.choose(_plans("llama-3.1-405b", "nvidia-l4", 8192), CHAT) is None
    arch = catalog.default().model("llama-3.1-405b")
    result = auto.plan_auto(arch, [catalog.default().gpu("nvidia-l4")], CHAT, context=8192)
    assert not result.fits and "GiB per GPU" in (result.reason or "")


def test_an_slo_no_degree_meets_takes_the_fastest() -> None:
    impossible = auto.Workload(ttft_p95_s=0.001, tpot_p95_s=0.001, mean_prompt_tokens=1024,
                               mean_output_tokens=256)
    choice = auto.choose(_plans("llama-3.1-70b", "nvidia-h100-80gb", 8192), impossible)
    assert choice is not None and choice.plan.gpus_per_replica == 8
    assert "even for one request" in choice.reason
