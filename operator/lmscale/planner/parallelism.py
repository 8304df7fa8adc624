"""Which tensor-parallel degrees a model can use on a GPU type.

Megatron-style tensor parallelism (Shoeybi et al. 2019), as vLLM implements it, splits the
attention heads and the MLP's intermediate dimension across GPUs, so the degree must divide
`attention_heads` and `intermediate_size`; KV heads are either split (tp divides kv_heads) or
replicated (kv_heads divides tp) - vLLM's `ModelConfig.verify_with_parallel_config` and
`QKVParallelLinear` enforce both. The all-reduces after every attention and MLP block need
NVLink-class bandwidth, so a replica stays inside one node.
"""

from __future__ import annotations

from lmscale.planner import catalog


def tp_problem(model: catalog.ModelArchitecture, gpu: catalog.GpuType, tp: int) -> str | None:
    """Why `tp` GPUs cannot hold one replica, or None when they can."""
    if tp < 1:
        return "gpus per replica must be at least 1"
    if tp > gpu.gpus_per_node:
        return (f"{tp} GPUs per replica exceed the {gpu.gpus_per_node} {gpu.key} GPUs of one "
                "node (tensor parallelism stays inside a node)")
    if model.attention_heads % tp:
        return f"{tp} does not divide {model.key}'s {model.attention_heads} attention heads"
    if model.kv_heads % tp and tp % model.kv_heads:
        return (f"{tp} neither divides nor is a multiple of {model.key}'s "
                f"{model.kv_heads} KV heads")
    if model.intermediate_size % tp:
        return f"{tp} does not divide {model.key}'s MLP width {model.intermediate_size}"
    return None


def valid_tp_degrees(model: catalog.ModelArchitecture, gpu: catalog.GpuType) -> tuple[int, ...]:
    """Every degree from 1 to a node's GPU count that the model's shape allows, ascending."""
    return tuple(
        tp for tp in range(1, gpu.gpus_per_node + 1) if tp_problem(model, gpu, tp) is None
    )
