"""Ranking GPU types and degrees by cost within the SLO, with reasons for the losers."""

from __future__ import annotations

import dataclasses

import pytest

from lmscale.planner import recommend

LOAD = recommend.Load(rate_rps=10, mean_prompt_tokens=1000, mean_output_tokens=200)
OBJECTIVE = recommend.Objective(ttft_p95_s=0.5, tpot_p95_s=0.06)


@pytest.fixture(scope="module")
def result() -> recommend.Recommendation:
    return recommend.recommend("llama-3.1-8b", load=LOAD, objective=OBJECTIVE)


def test_candidates_are_cheapest_first(result: recommend.Recommendation) -> None:
    costs = [c.cost_per_hour for c in result.candidates]
    assert costs and costs == sorted(costs)
    assert result.best is result.candidates[0]
    assert result.best.reason.startswith("cheapest")


def test_every_loser_says_why(result: recommend.Recommendation) -> None:
    for loser in result.candidates[1:]:
        assert "more than" in loser.reason and "replica carries" in loser.reason
    reasons = {(r.gpu, r.gpus_per_replica): r.reason for r in result.rejected}
    assert "cannot run bfloat16" in reasons[("nvidia-t4", 1)]
    assert any("TPOT" in r or "TTFT" in r for r in reasons.values())


def test_the_json_contract(result: recommend.Recommendation) -> None:
    data = result.to_dict()
    for candidate in data["candidates"]:
        assert {"gpu", "replicas", "cost_per_hour", "gpus_per_replica", "fits"} <= set(candidate)
        assert candidate["cost_per_hour"] == pytest.approx(
            candidate["replicas"] * candidate["replica_cost_per_hour"])
    assert [c["cost_per_hour"] for c in data["candidates"]] == sorted(
        c["cost_per_hour"] for c in data["candidates"])


def test_more_load_never_needs_fewer_replicas() -> None:
    light = recommend.recommend("llama-3.1-8b", load=LOAD, objective=OBJECTIVE,
                                gpus=["nvidia-h100-80gb"])
    heavy = recommend.recommend("llama-3.1-8b", load=dataclasses.replace(LOAD, rate_rps=100),
                                objective=OBJECTIVE, gpus=["nvidia-h100-80gb"])
    assert heavy.best is not None and light.best is not None
    assert heavy.best.replicas >= light.best.replicas
    assert heavy.best.cost_per_hour >= light.best.cost_per_hour


def test_a_model_too_big_for_a_type_is_rejected_with_memory_figures() -> None:
    result = recommend.recommend("llama-3.1-405b", load=LOAD, objective=OBJECTIVE,
                                 gpus=["nvidia-l4"])
    assert not result.candidates
    assert all("GiB per GPU" in r.reason for r in result.rejected)


class _Req:
    def __init__(self, arrival_s: float, prompt_tokens: int, output_tokens: int) -> None:
        self.arrival_s, self.prompt_tokens, self.output_tokens = (
            arrival_s, prompt_tokens, output_tokens)


def test_load_from_a_trace() -> None:
    load = recommend.Load.from_requests([_Req(0, 100, 10), _Req(1, 300, 30), _Req(2, 200, 20)])
    assert load == recommend.Load(rate_rps=1.5, mean_prompt_tokens=200, mean_output_tokens=20)
    with pytest.raises(ValueError, match="empty"):
        recommend.Load.from_requests([])
