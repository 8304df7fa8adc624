"""One replica's plan: GPUs per replica, memory, KV capacity, speed, storage and price.

`plan_replica` ties the arithmetic modules together; `CapacityPlan.to_dict()` is the JSON
contract of `lmscale plan` and of `status.capacityPlan`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from lmscale.planner import (
    catalog,
    cost,
    engine,
    kvcache,
    memory,
    parallelism,
    performance,
    storage,
    weights,
)

DEFAULT_CONTEXT = 4096


@dataclasses.dataclass(frozen=True, kw_only=True)
class CapacityPlan:
    """What one replica of a model needs and can do on one GPU type."""

    model: catalog.ModelArchitecture
    gpu: catalog.GpuType
    dtype: str
    kv_cache_dtype: str
    context: int
    batch: int  # the decode batch the decode figures are for
    gpus_per_replica: int
    fits: bool
    reason: str | None
    weights_bytes: int
    kv_bytes_per_token: int
    memory: memory.MemoryBudget
    memory_fraction: float
    kv_capacity_tokens: int
    max_num_seqs: int
    max_num_batched_tokens: int
    max_concurrent_sequences: int
    decode_step_seconds: float | None
    prefill_seconds: float | None  # one `context`-token prompt on an idle replica
    storage: storage.StoragePlan
    cost_per_hour: float
    efficiency: performance.Efficiency
    notes: tuple[str, ...] = ()
    # Set by `planner.auto` when it chose the degree: why, and every degree it weighed.
    degree_reason: str | None = None
    degree_candidates: tuple[dict[str, Any], ...] = dataclasses.field(default=(), compare=False)
    degree_inputs: str | None = dataclasses.field(default=None, compare=False)  # its hash

    @property
    def decode_tokens_per_second(self) -> float | None:
        if not self.decode_step_seconds:
            return None
        return self.batch / self.decode_step_seconds

    @property
    def prefill_tokens_per_second(self) -> float | None:
        if not self.prefill_seconds:
            return None
        return self.context / self.prefill_seconds

    @property
    def cold_start_seconds(self) -> float:
        return self.storage.cold_start_seconds

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract: plain numbers and strings only."""
        mem = self.memory
        return {
            "model": self.model.key,
            "hf_id": self.model.hf_id or None,
            "gpu": self.gpu.key,
            "gpu_product_label": self.gpu.product_label,
            "dtype": self.dtype,
            "kv_cache_dtype": self.kv_cache_dtype,
            "context": self.context,
            "batch": self.batch,
            "fits": self.fits,
            "reason": self.reason,
            "gpus_per_replica": self.gpus_per_replica,
            "parameters": weights.parameter_count(self.model).total,
            "weights_bytes": self.weights_bytes,
            "weights_bytes_per_gpu": mem.weights,
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "memory_per_gpu": {
                "total_bytes": mem.total,
                "usable_bytes": mem.usable,
                "memory_fraction": self.memory_fraction,
                "weights_bytes": mem.weights,
                "activation_bytes": mem.activations,
                "non_torch_bytes": mem.non_torch,
                "cuda_graph_bytes": mem.cuda_graphs,
                "kv_cache_bytes": max(0, mem.kv_cache),
            },
            "kv_capacity_tokens": self.kv_capacity_tokens,
            "max_num_seqs": self.max_num_seqs,
            "max_num_batched_tokens": self.max_num_batched_tokens,
            "max_concurrent_sequences": self.max_concurrent_sequences,
            "decode_step_seconds": self.decode_step_seconds,
            "decode_tokens_per_second": self.decode_tokens_per_second,
            "prefill_seconds": self.prefill_seconds,
            "prefill_tokens_per_second": self.prefill_tokens_per_second,
            "price_per_gpu_hour": self.gpu.price_per_hour,
            "cost_per_hour": self.cost_per_hour,
            "storage": {
                "source": self.storage.source,
                "download_bytes": self.storage.download_bytes,
                "pvc_size": self.storage.pvc_size,
                "load_seconds": self.storage.load_seconds,
                "engine_start_seconds": self.storage.engine_start_seconds,
            },
            "cold_start_seconds": self.cold_start_seconds,
            "efficiency": dataclasses.asdict(self.efficiency),
            "notes": list(self.notes),
            "gpus_per_replica_reason": self.degree_reason,
            "gpus_per_replica_candidates": list(self.degree_candidates),
            "gpus_per_replica_inputs": self.degree_inputs,
        }


def _gib(value: float) -> str:
    return f"{value / catalog.GIB:.1f} GiB"


def default_kv_dtype(dtype: str) -> str:
    """The engine's default cache dtype: the activations' 16-bit type."""
    return "float16" if dtype == "float16" else "bfloat16"


@dataclasses.dataclass(frozen=True)
class _Sizing:
    """The memory side of one tensor-parallel degree."""

    tp: int
    budget: memory.MemoryBudget
    capacity: int
    kv_sequences: int  # sequences of `context` tokens the cache holds
    concurrent: int  # the same, capped by the engine's max_num_seqs


def _size(
    model: catalog.ModelArchitecture,
    gpu: catalog.GpuType,
    tp: int,
    *,
    dtype: str,
    kv_dtype: str,
    context: int,
    limits: engine.SchedulerLimits,
    memory_fraction: float,
) -> _Sizing:
    mem = memory.budget(
        model, gpu, dtype=dtype, tp=tp, memory_fraction=memory_fraction,
        max_num_batched_tokens=limits.max_num_batched_tokens, max_num_seqs=limits.max_num_seqs,
    )
    capacity = memory.kv_capacity_tokens(model, mem, kv_dtype=kv_dtype, tp=tp)
    kv_sequences = kvcache.concurrent_sequences(capacity, context, capacity + 1)
    return _Sizing(tp=tp, budget=mem, capacity=capacity, kv_sequences=kv_sequences,
                   concurrent=min(kv_sequences, limits.max_num_seqs))


def _memory_reason(
    model: catalog.ModelArchitecture,
    gpu: catalog.GpuType,
    sizing: _Sizing,
    *,
    dtype: str,
    kv_dtype: str,
    context: int,
    sequences: int,
    memory_fraction: float,
    auto: bool,
) -> str:
    """Memory needed against memory available, per GPU, in words."""
    mem = sizing.budget
    blocks = -(-context // kvcache.BLOCK_TOKENS) * kvcache.BLOCK_TOKENS
    kv = sequences * blocks * kvcache.kv_bytes_per_token_per_gpu(model, kv_dtype, sizing.tp)
    need = mem.reserved + kv
    where = (f"at {sizing.tp} GPUs per replica, the most one {gpu.key} node allows"
             if auto else f"at {sizing.tp} GPUs per replica")
    return (
        f"{model.key} in {dtype} needs {_gib(need)} per GPU (weights {_gib(mem.weights)}, "
        f"engine reserves {_gib(mem.reserved - mem.weights)}, KV cache for {sequences} "
        f"sequence(s) of {context} tokens {_gib(kv)}) but {gpu.key} has {_gib(mem.usable)} "
        f"usable ({memory_fraction:.0%} of {_gib(mem.total)}) {where}"
    )


def plan_replica(
    model: catalog.ModelArchitecture | str,
    gpu: catalog.GpuType | str,
    *,
    dtype: str = "bfloat16",
    context: int = DEFAULT_CONTEXT,
    batch: int | None = None,
    gpus_per_replica: int | None = None,
    kv_cache_dtype: str | None = None,
    memory_fraction: float = memory.DEFAULT_MEMORY_FRACTION,
    max_num_seqs: int | None = None,
    max_num_batched_tokens: int | None = None,
    price_per_hour: float | None = None,
    source: str = "hf",
    load_bandwidth_bytes_per_second: float | None = None,
    efficiency: performance.Efficiency | None = None,
    known: catalog.Catalog | None = None,
) -> CapacityPlan:
    """Plan one replica of `model` on `gpu` for sequences of `context` tokens.

    `gpus_per_replica=None` picks the smallest valid tensor-parallel degree whose KV cache
    holds `batch` (or one) sequences of `context` tokens. A model that cannot fit gives
    `fits=False` and a `reason` with the memory needed against the memory there is.
    """
    cat = known or catalog.default()
    arch = cat.model(model) if isinstance(model, str) else model
    card = cat.gpu(gpu) if isinstance(gpu, str) else gpu
    if price_per_hour is not None:
        card = card.with_price(price_per_hour)
    dtype = weights.canonical_dtype(dtype)
    kv_dtype = weights.canonical_dtype(kv_cache_dtype or default_kv_dtype(dtype))
    kvcache.element_bytes(kv_dtype)  # rejects a cache dtype that cannot exist
    if context < 1:
        raise ValueError("context must be at least 1 token")
    if batch is not None and batch < 1:
        raise ValueError("batch must be at least 1 sequence")
    if not 0 < memory_fraction <= 1:
        raise ValueError("memory fraction must be in (0, 1]")
    defaults = engine.default_limits(card)
    limits = engine.SchedulerLimits(
        max_num_seqs=max_num_seqs or defaults.max_num_seqs,
        max_num_batched_tokens=max_num_batched_tokens or defaults.max_num_batched_tokens,
    )
    eff = efficiency or performance.DEFAULT_EFFICIENCY
    weight_total = weights.weight_bytes(arch, dtype)
    store = storage.storage_plan(
        weight_total, source=source, bandwidth_bytes_per_second=load_bandwidth_bytes_per_second
    )
    sequences = batch or 1
    sized = functools.partial(_size, arch, card, dtype=dtype, kv_dtype=kv_dtype,
                              context=context, limits=limits, memory_fraction=memory_fraction)

    def result(sizing: _Sizing, *, reason: str | None, notes: tuple[str, ...] = ()) -> CapacityPlan:
        fits = reason is None
        decode = prefill = None
        run_batch = batch or max(1, sizing.concurrent)
        if fits:
            perf = performance.build(
                arch, card, dtype=dtype, kv_dtype=kv_dtype, tp=sizing.tp,
                kv_capacity_tokens=sizing.capacity, max_num_seqs=limits.max_num_seqs,
                max_num_batched_tokens=limits.max_num_batched_tokens,
                cold_start_seconds=store.cold_start_seconds,
                cost_per_hour=cost.replica_cost_per_hour(card, sizing.tp), efficiency=eff,
            )
            decode = perf.decode_step_seconds(run_batch, context)
            prefill = perf.prefill_seconds(context)
        return CapacityPlan(
            model=arch, gpu=card, dtype=dtype, kv_cache_dtype=kv_dtype, context=context,
            batch=run_batch, gpus_per_replica=sizing.tp, fits=fits, reason=reason,
            weights_bytes=weight_total,
            kv_bytes_per_token=kvcache.kv_bytes_per_token(arch, kv_dtype),
            memory=sizing.budget, memory_fraction=memory_fraction,
            kv_capacity_tokens=sizing.capacity if fits else 0,
            max_num_seqs=limits.max_num_seqs,
            max_num_batched_tokens=limits.max_num_batched_tokens,
            max_concurrent_sequences=sizing.concurrent if fits else 0,
            decode_step_seconds=decode, prefill_seconds=prefill, storage=store,
            cost_per_hour=cost.replica_cost_per_hour(card, sizing.tp),
            efficiency=eff, notes=notes,
        )

    first_tp = gpus_per_replica or 1
    # Input the hardware cannot serve at all, whatever the degree.
    if performance.compute_tflops(card, dtype) <= 0:
        return result(sized(first_tp), reason=(
            f"{card.key} cannot run {dtype} weights (it supports "
            f"{', '.join(card.supported_dtypes)})"))
    if context > arch.max_context:
        return result(sized(first_tp), reason=(
            f"context {context} exceeds {arch.key}'s maximum of {arch.max_context} tokens"))

    if gpus_per_replica is not None:
        problem = parallelism.tp_problem(arch, card, gpus_per_replica)
        sizing = sized(gpus_per_replica)
        if problem:
            return result(sizing, reason=problem)
        candidates = [sizing]
    else:
        degrees = parallelism.valid_tp_degrees(arch, card)
        candidates = [sized(tp) for tp in degrees]
    for sizing in candidates:
        if sizing.kv_sequences >= sequences:
            notes: tuple[str, ...] = ()
            if batch and batch > sizing.concurrent:
                notes = (f"batch {batch} exceeds the engine's max_num_seqs "
                         f"{limits.max_num_seqs}; raise it to run that batch",)
            return result(sizing, reason=None, notes=notes)
    largest = candidates[-1]
    return result(largest, reason=_memory_reason(
        arch, card, largest, dtype=dtype, kv_dtype=kv_dtype, context=context,
        sequences=sequences, memory_fraction=memory_fraction, auto=gpus_per_replica is None))
