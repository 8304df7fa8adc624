"""The step-time model: calibration against the H200 measurement, and its shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmscale.planner import catalog, performance, plan

CALIBRATION = Path(__file__).resolve().parents[3] / "docs" / "calibration"


def _h200_8b() -> performance.ReplicaPerformance:
    return performance.replica_performance(plan.plan_replica("llama-3.1-8b", "nvidia-h200"))


def _decode_cases() -> list:
    data = json.loads((CALIBRATION / "h200-decode-step.json").read_text())
    return [pytest.param(row, id=f"b{row['batch']}-c{row['context']}") for row in data["decode"]
            if "seconds" in row and not (row["batch"] == 1 and row["context"] > 4096)]


@pytest.mark.parametrize("row", _decode_cases())
def test_decode_step_matches_the_h200_measurement(row: dict) -> None:
    """Kernel time of a Llama-8B-shaped decode step in one CUDA graph (hack/calibrate).

    Batch 1 at 8k context is left out: torch's attention has no split-KV for one sequence,
    so it reads the cache at a fraction of the bandwidth vLLM's kernels reach.
    """
    perf = _h200_8b()
    kernels = perf.decode_step_seconds(row["batch"], row["context"])
    kernels -= performance.DEFAULT_EFFICIENCY.step_overhead_s  # CPU side, not in the bench
    assert kernels == pytest.approx(row["seconds"], rel=0.07)


def _prefill_cases() -> list:
    data = json.loads((CALIBRATION / "h200-decode-step.json").read_text())
    return [pytest.param(row, id=f"t{row['tokens']}") for row in data["prefill"]
            if "seconds" in row]


@pytest.mark.parametrize("row", _prefill_cases())
def test_prefill_matches_the_h200_measurement(row: dict) -> None:
    perf = _h200_8b()
    assert perf.prefill_seconds(row["tokens"]) == pytest.approx(row["seconds"], rel=0.07)


def test_h200_total_memory_matches_the_measurement() -> None:
    data = json.loads((CALIBRATION / "h200-microbench.json").read_text())
    plan_total = plan.plan_replica("llama-3.1-8b", "nvidia-h200").memory.total
    assert plan_total == pytest.approx(data["memory"]["total_bytes"], rel=0.002)


def test_decode_is_bandwidth_bound_at_small_batch() -> None:
    perf = _h200_8b()
    one, two = perf.decode_step_seconds(1, 100), perf.decode_step_seconds(2, 100)
    assert two == pytest.approx(one, rel=0.01)


def test_step_seconds_is_zero_for_an_empty_step() -> None:
    assert _h200_8b().step_seconds(prefill_tokens=0, decode_seqs=0, kv_tokens=0) == 0.0


def test_prefill_is_chunked_and_attends_to_earlier_chunks() -> None:
    perf = _h200_8b()
    chunk = perf.max_num_batched_tokens
    first = perf.step_seconds(prefill_tokens=chunk, decode_seqs=0, kv_tokens=0)
    assert perf.prefill_seconds(2 * chunk) > 2 * first
    assert perf.prefill_seconds(0) == 0.0


def test_moe_reads_more_experts_as_the_batch_grows() -> None:
    perf = performance.replica_performance(plan.plan_replica("mixtral-8x7b", "nvidia-h200"))
    assert perf.experts_s > 0
    assert perf.expert_skip == pytest.approx(0.75)
    one = perf.step_seconds(prefill_tokens=0, decode_seqs=1, kv_tokens=0)
    many = perf.step_seconds(prefill_tokens=0, decode_seqs=32, kv_tokens=0)
    # One token streams 2 of 8 experts; 32 tokens touch nearly all of them.
    assert one < many < one * 4


def test_tensor_parallel_splits_the_work_and_adds_communication() -> None:
    one = performance.replica_performance(
        plan.plan_replica("llama-3.1-70b", "nvidia-h200", gpus_per_replica=2))
    four = performance.replica_performance(
        plan.plan_replica("llama-3.1-70b", "nvidia-h200", gpus_per_replica=4))
    assert four.comm_s_per_token > one.comm_s_per_token > 0
    assert four.decode_step_seconds(32, 2048) < one.decode_step_seconds(32, 2048)
    single = performance.replica_performance(plan.plan_replica("llama-3.1-8b", "nvidia-h200"))
    split = performance.replica_performance(
        plan.plan_replica("llama-3.1-8b", "nvidia-h200", gpus_per_replica=4))
    assert single.comm_s_per_token == 0 and split.fixed_s > single.fixed_s


def test_pcie_all_reduce_is_slower_than_nvlink() -> None:
    l40s = performance.replica_performance(
        plan.plan_replica("llama-3.1-8b", "nvidia-l40s", gpus_per_replica=2))
    h100 = performance.replica_performance(
        plan.plan_replica("llama-3.1-8b", "nvidia-h100-80gb", gpus_per_replica=2))
    assert l40s.comm_s_per_token > h100.comm_s_per_token


@pytest.mark.parametrize(
    ("gpu", "dtype", "expected"),
    [
        pytest.param("nvidia-h100-80gb", "fp8", 1979, id="fp8-tensor-cores"),
        pytest.param("nvidia-a100-80gb", "fp8", 312, id="fp8-weight-only"),
        pytest.param("nvidia-t4", "float16", 65, id="t4-fp16"),
        pytest.param("nvidia-t4", "bfloat16", 0, id="t4-no-bf16"),
        pytest.param("nvidia-l4", "int4", 121, id="int4-16-bit-math"),
    ],
)
def test_compute_rate_by_dtype(gpu: str, dtype: str, expected: float) -> None:
    assert performance.compute_tflops(catalog.gpu(gpu), dtype) == expected
