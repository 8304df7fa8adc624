"""Usable memory per GPU, checked against what vLLM reported for a known model and GPU."""

from __future__ import annotations

import pytest

from lmscale.planner import catalog, memory, plan

GIB = catalog.GIB

# vllm-project/vllm#10517: Llama-3.1-8B-Instruct, RTX 3090 (24576 MiB), vLLM 0.6 without
# chunked prefill (max_num_batched_tokens = max_model_len), gpu_memory_utilization 0.9:
#   max_model_len 20000: total_gpu_memory=23.58GiB peak_torch_memory=17.06GiB
#   non_torch_memory=0.35GiB kv_cache_size=3.81GiB, # GPU blocks: 1952
#   max_model_len 29000: peak_torch_memory=17.98GiB kv_cache_size=2.89GiB, 1478 blocks
#   "Loading model weights took 14.9888 GB" (GiB).
RTX_3090 = catalog.GpuType(
    key="rtx-3090", product_label="NVIDIA-GeForce-RTX-3090", memory_mib=24576,
    bandwidth_gbps=936, bf16_tflops=71, fp16_tflops=71, fp8_tflops=0, interconnect="pcie4",
    interconnect_gbps=32, gpus_per_node=8, price_per_hour=0.3,
)
LLAMA_8B = catalog.model("llama-3.1-8b")


@pytest.mark.parametrize(
    ("tokens", "vllm_blocks"),
    [pytest.param(20000, 1952, id="20k-1952-blocks"), pytest.param(29000, 1478, id="29k-1478")],
)
def test_kv_capacity_close_to_what_vllm_reported(tokens: int, vllm_blocks: int) -> None:
    result = plan.plan_replica(LLAMA_8B, RTX_3090, context=1024,
                               max_num_batched_tokens=tokens, max_num_seqs=256)
    vllm_tokens = vllm_blocks * 16
    # Conservative, and within 15%: the planner's non-torch reserve is 0.5 GiB, not 0.35.
    assert 0.85 * vllm_tokens <= result.kv_capacity_tokens <= vllm_tokens


def test_device_total_matches_what_vllm_saw() -> None:
    budget = memory.budget(LLAMA_8B, RTX_3090, dtype="bfloat16", tp=1,
                           max_num_batched_tokens=2048, max_num_seqs=256)
    assert budget.total / GIB == pytest.approx(23.58, abs=0.1)


def test_weights_match_vllm_loading_figure() -> None:
    budget = memory.budget(LLAMA_8B, RTX_3090, dtype="bfloat16", tp=1,
                           max_num_batched_tokens=2048, max_num_seqs=256)
    assert budget.weights / GIB == pytest.approx(14.9888, abs=0.05)


def test_activation_peak_grows_like_vllms_profile() -> None:
    """vLLM's peak grew 0.92 GiB from a 20000- to a 29000-token profile run."""
    at = [memory.activation_peak_bytes(LLAMA_8B, tp=1, max_num_batched_tokens=t,
                                       max_num_seqs=256) for t in (20000, 29000)]
    assert (at[1] - at[0]) / GIB == pytest.approx(0.92, rel=0.05)
    assert at[0] / GIB == pytest.approx(17.06 - 14.99, rel=0.1)


def test_tensor_parallelism_splits_weights_and_activations() -> None:
    one = memory.budget(LLAMA_8B, catalog.gpu("nvidia-h100-80gb"), dtype="bfloat16", tp=1,
                        max_num_batched_tokens=8192, max_num_seqs=1024)
    two = memory.budget(LLAMA_8B, catalog.gpu("nvidia-h100-80gb"), dtype="bfloat16", tp=2,
                        max_num_batched_tokens=8192, max_num_seqs=1024)
    assert two.weights == pytest.approx(one.weights / 2, abs=1)
    assert two.activations < one.activations
    assert two.non_torch > one.non_torch  # NCCL buffers


@pytest.mark.parametrize(
    ("fraction", "graphs_charged"),
    [pytest.param(0.90, False, id="headroom-holds-the-graphs"),
     pytest.param(0.999, True, id="no-headroom-left")],
)
def test_cuda_graphs_come_out_of_the_budget_only_without_headroom(
    fraction: float, graphs_charged: bool
) -> None:
    budget = memory.budget(LLAMA_8B, catalog.gpu("nvidia-l4"), dtype="bfloat16", tp=1,
                           max_num_batched_tokens=2048, max_num_seqs=256,
                           memory_fraction=fraction)
    assert (budget.cuda_graphs > 0) is graphs_charged
