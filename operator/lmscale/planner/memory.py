"""What one GPU's memory holds: weights, the engine's reserves, and what is left for KV cache.

vLLM sizes its KV cache once at start-up (`Worker.determine_available_memory`): it may use
`gpu_memory_utilization` (default 0.9) of the device's total memory as cudaMemGetInfo reports
it; from that it subtracts the weights, the peak activation memory of a profile run over
`max_num_batched_tokens` tokens, and the memory outside PyTorch's allocator (CUDA context,
cuBLAS workspaces, NCCL buffers). CUDA graphs are captured afterwards, into the headroom the
memory fraction leaves; only the part that does not fit there comes out of the KV budget.

Checked against a vLLM log (vllm-project/vllm#10517, Llama-3.1-8B on a 24 GB RTX 3090 at 0.9,
20000-token batch: total 23.58 GiB, peak torch 17.06 GiB of which weights 14.99 GiB,
non-torch 0.35 GiB, KV cache 3.81 GiB = 1952 blocks); tests/unit/planner/test_memory.py.
"""

from __future__ import annotations

import dataclasses

from lmscale.planner import catalog, kvcache, weights

DEFAULT_MEMORY_FRACTION = 0.90  # vLLM --gpu-memory-utilization default

# Memory the driver keeps back: cudaMemGetInfo's total is below nvidia-smi's by 615 MiB on an
# H200 (143771 -> 143156 MiB, measured, docs/calibration/) and 430 MiB on an RTX 3090
# (24576 MiB -> 23.58 GiB in vllm#10517).
DRIVER_RESERVED_BYTES = 512 * catalog.MIB
# Memory outside PyTorch's allocator on each GPU: CUDA context and cuBLAS workspaces (vLLM
# reports 0.35 GiB "non_torch_memory" on one GPU in vllm#10517; more with newer CUDA
# libraries); NCCL adds buffers when the replica spans GPUs.
NON_TORCH_BYTES = int(0.5 * catalog.GIB)
NCCL_BYTES = int(0.5 * catalog.GIB)
# CUDA graphs for decode batch sizes up to 512: vLLM logs "Graph capturing finished ...
# took 0.2-1.0 GiB" for 1B-70B models.
CUDA_GRAPH_BYTES = int(0.5 * catalog.GIB)
# The sampler's profile run holds float32 logits for every sequence slot.
FLOAT32_BYTES = 4


@dataclasses.dataclass(frozen=True)
class MemoryBudget:
    """One GPU of a replica, in bytes."""

    total: int  # as cudaMemGetInfo reports it
    usable: int  # total * memory fraction: what the engine may touch
    weights: int
    activations: int
    non_torch: int
    cuda_graphs: int  # the part of the CUDA-graph reserve the headroom cannot hold

    @property
    def reserved(self) -> int:
        return self.weights + self.activations + self.non_torch + self.cuda_graphs

    @property
    def kv_cache(self) -> int:
        """Bytes left for the KV cache; negative when the model does not fit."""
        return self.usable - self.reserved


def activation_peak_bytes(
    model: catalog.ModelArchitecture,
    *,
    tp: int,
    max_num_batched_tokens: int,
    max_num_seqs: int,
) -> int:
    """Peak activation memory of the profile run, per GPU.

    The largest live tensors of one layer for a full token budget: the MLP's up/gate output
    and the activated product (3 x intermediate wide for gated MLPs, per routed expert for
    MoE) and three hidden-wide tensors (residual, normed input, attention output), 16-bit,
    split across tp GPUs; then the sampler's float32 logits for every sequence slot. The
    vllm#10517 log gives 2.07 GiB for 20000 tokens of Llama-3.1-8B and 2.99 GiB for 29000,
    i.e. 110 KB per token; this formula gives 110.6 KB.
    """
    mlp_width = (3 if model.mlp == "gated" else 2) * model.intermediate_size
    per_token = (mlp_width * model.experts_per_token // tp + 3 * model.hidden_size) * 2
    logits = FLOAT32_BYTES * model.vocab_size * max_num_seqs
    return per_token * max_num_batched_tokens + logits


def budget(
    model: catalog.ModelArchitecture,
    gpu: catalog.GpuType,
    *,
    dtype: str,
    tp: int,
    max_num_batched_tokens: int,
    max_num_seqs: int,
    memory_fraction: float = DEFAULT_MEMORY_FRACTION,
) -> MemoryBudget:
    """One GPU's memory budget for a tp-way replica of `model` in `dtype`."""
    total = gpu.memory_bytes - DRIVER_RESERVED_BYTES
    usable = int(total * memory_fraction)
    return MemoryBudget(
        total=total,
        usable=usable,
        weights=-(-weights.weight_bytes(model, dtype) // tp),
        activations=activation_peak_bytes(
            model, tp=tp, max_num_batched_tokens=max_num_batched_tokens,
            max_num_seqs=max_num_seqs,
        ),
        non_torch=NON_TORCH_BYTES + (NCCL_BYTES if tp > 1 else 0),
        cuda_graphs=max(0, CUDA_GRAPH_BYTES - (total - usable)),
    )


def kv_capacity_tokens(
    model: catalog.ModelArchitecture, mem: MemoryBudget, *, kv_dtype: str, tp: int
) -> int:
    """Tokens the replica's KV cache holds (each GPU holds its heads of every token)."""
    per_gpu = kvcache.kv_bytes_per_token_per_gpu(model, kv_dtype, tp)
    return kvcache.capacity_tokens(mem.kv_cache, per_gpu)
