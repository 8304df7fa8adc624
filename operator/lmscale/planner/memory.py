"""What one GPU's memory holds: weights, the engine's reserves, and what is left for KV cache.

vLLM sizes its KV cache once at start-up (`Worker.determine_available_memory`): it may use
`gpu_memory_utilization` (default 0.9) of the device's total memory; from that it subtracts
the weights, the peak activation memory of a profile run over `max_num_batched_tokens`
tokens, and the memory outside PyTorch's allocator (CUDA context, cuBLAS workspaces, NCCL
buffers). CUDA graphs are captured afterwards into the remaining 10%; the planner still keeps
a small reserve for them so that a plan stays valid on engine versions that count them.

The reserves are estimates; `CALIBRATION` says where each comes from.
"""

from __future__ import annotations

import dataclasses

from lmscale.planner import catalog, kvcache, weights

DEFAULT_MEMORY_FRACTION = 0.90  # vLLM --gpu-memory-utilization default

# Memory outside PyTorch's allocator on each GPU: CUDA context and cuBLAS/cuDNN workspaces
# (vLLM logs report 0.3-1.0 GiB "non-torch memory" on one GPU); NCCL adds buffers when the
# replica spans GPUs.
NON_TORCH_BYTES = int(0.75 * catalog.GIB)
NCCL_BYTES = int(0.5 * catalog.GIB)
# CUDA graphs for decode batch sizes up to 512: vLLM logs "Graph capturing finished ...
# took 0.2-1.0 GiB" for 1B-70B models.
CUDA_GRAPH_BYTES = int(0.5 * catalog.GIB)
# The sampler's profile run holds float32 logits and probabilities for every sequence slot.
LOGIT_COPIES = 2
FLOAT32_BYTES = 4


@dataclasses.dataclass(frozen=True)
class MemoryBudget:
    """One GPU of a replica, in bytes."""

    total: int
    usable: int  # total * memory fraction: what the engine may touch
    weights: int
    activations: int
    non_torch: int
    cuda_graphs: int

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
    and the activated product (2*intermediate + intermediate wide for gated MLPs, per routed
    expert for MoE), plus residual, normed and attention-output hidden states (4*hidden), in
    16-bit, split across tp GPUs; then the sampler's float32 logits for every sequence slot.
    """
    mlp_width = (3 if model.mlp == "gated" else 2) * model.intermediate_size
    per_token = (mlp_width * model.experts_per_token // tp + 4 * model.hidden_size) * 2
    logits = LOGIT_COPIES * FLOAT32_BYTES * model.vocab_size * max_num_seqs
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
    total = gpu.memory_bytes
    return MemoryBudget(
        total=total,
        usable=int(total * memory_fraction),
        weights=-(-weights.weight_bytes(model, dtype) // tp),
        activations=activation_peak_bytes(
            model, tp=tp, max_num_batched_tokens=max_num_batched_tokens,
            max_num_seqs=max_num_seqs,
        ),
        non_torch=NON_TORCH_BYTES + (NCCL_BYTES if tp > 1 else 0),
        cuda_graphs=CUDA_GRAPH_BYTES,
    )


def kv_capacity_tokens(
    model: catalog.ModelArchitecture, mem: MemoryBudget, *, kv_dtype: str, tp: int
) -> int:
    """Tokens the replica's KV cache holds (each GPU holds its heads of every token)."""
    per_gpu = kvcache.kv_bytes_per_token_per_gpu(model, kv_dtype, tp)
    return kvcache.capacity_tokens(mem.kv_cache, per_gpu)
