"""Latency at a load, the in-flight target within an SLO, and replicas for a rate."""

from __future__ import annotations

import dataclasses
import math

import pytest

from lmscale.planner import performance, plan, slo


@pytest.fixture(scope="module")
def perf() -> performance.ReplicaPerformance:
    return performance.replica_performance(plan.plan_replica("llama-3.1-8b", "nvidia-h100-80gb"))


MIX = dict(mean_prompt_tokens=1024, mean_output_tokens=256)


def test_latency_grows_with_load(perf: performance.ReplicaPerformance) -> None:
    latencies = [slo.latency_at(perf, concurrency=n, **MIX) for n in (1, 8, 64, 200)]
    assert [x.tpot_s for x in latencies] == sorted(x.tpot_s for x in latencies)
    assert [x.ttft_s for x in latencies] == sorted(x.ttft_s for x in latencies)
    assert latencies[-1].requests_per_second > latencies[0].requests_per_second


def test_one_request_alone(perf: performance.ReplicaPerformance) -> None:
    alone = slo.latency_at(perf, concurrency=1, **MIX)
    assert alone.ttft_s == pytest.approx(perf.prefill_seconds(1024), rel=0.3)
    assert alone.tpot_s == pytest.approx(perf.decode_step_seconds(1, 1152), rel=0.3)


def test_target_meets_the_slo_and_one_more_would_not(perf) -> None:
    objective = dict(ttft_p95_s=0.5, tpot_p95_s=0.05)
    target = slo.target_concurrency(perf, **objective, **MIX)
    assert target > 1
    at = slo.latency_at(perf, concurrency=int(target), **MIX)
    assert at.ttft_s <= 0.5 * slo.DEFAULT_HEADROOM and at.tpot_s <= 0.05 * slo.DEFAULT_HEADROOM
    beyond = slo.latency_at(perf, concurrency=int(target) + 1, **MIX)
    assert beyond.ttft_s > 0.4 or beyond.tpot_s > 0.04 or target == slo.kv_limited_concurrency(
        perf, **MIX)


def test_looser_slo_never_lowers_the_target(perf) -> None:
    targets = [slo.target_concurrency(perf, ttft_p95_s=t, tpot_p95_s=t / 10, **MIX)
               for t in (0.2, 0.5, 1.0, 5.0)]
    assert targets == sorted(targets)


def test_kv_cache_and_saturation_cap_the_target(perf) -> None:
    """Without latency limits the target stops where the KV cache is full or prompts arrive
    faster than the replica can prefill them (beyond that, queues grow without bound)."""
    target = slo.target_concurrency(perf, ttft_p95_s=1e6, tpot_p95_s=1e6, **MIX)
    assert target <= slo.kv_limited_concurrency(perf, **MIX)
    assert target * (1024 + 256) <= perf.kv_capacity_tokens
    assert math.isfinite(slo.latency_at(perf, concurrency=int(target), **MIX).ttft_s)
    assert math.isinf(slo.latency_at(perf, concurrency=int(target) + 1, **MIX).ttft_s) or (
        target == slo.kv_limited_concurrency(perf, **MIX))
    small_kv = dataclasses.replace(perf, kv_capacity_tokens=20 * 1280)
    assert slo.target_concurrency(small_kv, ttft_p95_s=1e6, tpot_p95_s=1e6, **MIX) == 20


def test_an_impossible_slo_gives_one_and_says_why(perf) -> None:
    assert slo.target_concurrency(perf, ttft_p95_s=0.001, tpot_p95_s=1, **MIX) == 1.0
    problem = slo.slo_problem(perf, ttft_p95_s=0.001, tpot_p95_s=1, **MIX)
    assert problem is not None and "TTFT" in problem and "1 ms objective" in problem
    problem = slo.slo_problem(perf, ttft_p95_s=10, tpot_p95_s=0.001, **MIX)
    assert problem is not None and "TPOT" in problem
    assert slo.slo_problem(perf, ttft_p95_s=1, tpot_p95_s=0.1, **MIX) is None


def test_replicas_scale_with_the_rate(perf) -> None:
    objective = dict(ttft_p95_s=0.5, tpot_p95_s=0.05, **MIX)
    counts = [slo.replicas_for_load(perf, rate_rps=rate, **objective) for rate in (1, 10, 100)]
    assert counts == sorted(counts) and counts[0] >= 1
    assert slo.replicas_for_load(perf, rate_rps=0, **objective) == 0
    per_replica = slo.latency_at(
        perf, concurrency=int(slo.target_concurrency(perf, **objective)), **MIX
    ).requests_per_second
    assert counts[2] == math.ceil(100 / per_replica)


def test_fractional_mean_prompts_take_the_same_steps(perf) -> None:
    """A mean of 1154.7 tokens is one chunk, like 1154 or 1155, not two."""
    whole = slo.latency_at(perf, concurrency=15, mean_prompt_tokens=1155, mean_output_tokens=211)
    fraction = slo.latency_at(perf, concurrency=15, mean_prompt_tokens=1154.7,
                              mean_output_tokens=211)
    assert fraction.ttft_s == pytest.approx(whole.ttft_s, rel=0.01)
