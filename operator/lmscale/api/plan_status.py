"""`status.capacityPlan`: the planner's result in the resource's own convention (camelCase).

The planner's `CapacityPlan.to_dict()` is the snake_case JSON of `lmscale plan -o json`
(a command-line tool's output, read by scripts). Status is a Kubernetes API surface, read
by `kubectl explain`, Argo CD and people, so it follows the API conventions: camelCase
keys and a schema for every field. `capacity_plan_status` converts one to the other; a key
the planner adds without a field here is dropped (and a unit test fails, naming it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import Field

from lmscale.api import schema


class PlanMemory(schema.StatusSchema):
    """Memory of one GPU of a replica, as the planner splits it."""

    total_bytes: int | None = Field(default=None, ge=0, description="GPU memory in bytes.")
    usable_bytes: int | None = Field(
        default=None, ge=0, description="What the engine may use: memoryFraction of the total."
    )
    memory_fraction: float | None = Field(
        default=None, ge=0, le=1, description="Share of GPU memory the engine is given."
    )
    weights_bytes: int | None = Field(
        default=None, ge=0, description="This GPU's shard of the weights, in bytes."
    )
    activation_bytes: int | None = Field(
        default=None, ge=0, description="Peak activations of one scheduler step, in bytes."
    )
    non_torch_bytes: int | None = Field(
        default=None, ge=0, description="CUDA context, NCCL buffers and allocator slack, in bytes."
    )
    cuda_graph_bytes: int | None = Field(
        default=None, ge=0, description="Captured CUDA graphs, in bytes."
    )
    kv_cache_bytes: int | None = Field(
        default=None, ge=0, description="What is left for the KV cache, in bytes."
    )


class PlanStorage(schema.StatusSchema):
    """Where the weights come from and how long a new replica takes to load them."""

    source: str | None = Field(
        default=None, max_length=64, description="hf, s3, gs or pvc: where the weights come from."
    )
    download_bytes: int | None = Field(
        default=None, ge=0, description="Bytes a cold replica reads to load the model."
    )
    pvc_size: str | None = Field(
        default=None, max_length=64, description="Size of a model cache volume, as a quantity."
    )
    load_seconds: float | None = Field(
        default=None, ge=0, description="Seconds to read the weights onto the GPUs."
    )
    engine_start_seconds: float | None = Field(
        default=None, ge=0, description="Seconds the engine takes to start besides loading."
    )


class PlanEfficiency(schema.StatusSchema):
    """The fractions of datasheet peaks the planner assumes real kernels reach."""

    bandwidth: float | None = Field(
        default=None, ge=0, description="Achieved / datasheet HBM bandwidth."
    )
    compute: float | None = Field(
        default=None, ge=0, description="Achieved / datasheet dense tensor-core FLOP/s."
    )
    matrix_overhead_s: float | None = Field(
        default=None, ge=0, description="Seconds of launch per weight matrix per step."
    )
    layer_overhead_s: float | None = Field(
        default=None, ge=0, description="Seconds of launch gaps per layer per step."
    )
    step_overhead_s: float | None = Field(
        default=None, ge=0, description="Seconds of CPU work per engine step."
    )
    allreduce_latency_s: float | None = Field(
        default=None, ge=0, description="Seconds per all-reduce over NVLink."
    )
    pcie_latency_factor: float | None = Field(
        default=None, ge=0, description="How much slower an all-reduce is over PCIe."
    )
    interconnect: float | None = Field(
        default=None, ge=0, description="Achieved / datasheet interconnect bandwidth."
    )


class PlanCalibration(schema.StatusSchema):
    """The calibration the target came from, kept so a restarted operator adopts it."""

    inputs: str | None = Field(
        default=None, max_length=256, description="Hash of what it was computed from."
    )
    target: float | None = Field(
        default=None, description="In-flight requests per replica at the SLO."
    )
    rate: float | None = Field(default=None, description="Requests per second at the target.")
    ttft_p95: float | None = Field(default=None, description="TTFT p95 at the target, seconds.")
    prompt_tokens_rate: float | None = Field(
        default=None, description="Prompt tokens per second at the target."
    )
    curve: list[Annotated[list[float], Field(min_length=2, max_length=2)]] = Field(
        default_factory=list, max_length=256,
        description="The measured (load, TTFT p95) points the target was read from.",
    )


class PlanAutoscaling(schema.StatusSchema):
    """What the autoscaler aims at per replica, and where that target came from."""

    target_in_flight_per_replica: float | None = Field(
        default=None, ge=0, description="In-flight requests (running + waiting) per replica."
    )
    requests_per_second_per_replica: float | None = Field(
        default=None, ge=0, description="Request rate one replica serves within the SLO."
    )
    prompt_tokens_per_second_per_replica: float | None = Field(
        default=None, ge=0, description="Prompt tokens per second one replica prefills at target."
    )
    ttft_p95_seconds_at_target: float | None = Field(
        default=None, ge=0, description="Time to first token, p95, at the target load."
    )
    method: str | None = Field(
        default=None, max_length=1024, description="How the target was set."
    )
    calibration: PlanCalibration | None = Field(
        default=None, description="The calibration the target came from."
    )


class PlanCandidate(schema.StatusSchema):
    """One (GPU type, GPUs per replica) that `gpusPerReplica: auto` weighed."""

    gpu: str | None = Field(default=None, max_length=253, description="Catalog GPU type.")
    gpus_per_replica: int | None = Field(default=None, ge=0, description="GPUs per replica.")
    fits: bool | None = Field(default=None, description="Whether one sequence fits.")
    problem: str | None = Field(
        default=None, max_length=1024, description="Why it misses the SLO even when idle."
    )
    requests_per_second_per_replica: float | None = Field(
        default=None, ge=0, description="Requests per second one replica carries within the SLO."
    )
    estimated_requests_per_second_per_replica: float | None = Field(
        default=None, ge=0, description="The same by the planner's mean-latency estimate."
    )
    calibrated: bool | None = Field(
        default=None, description="Whether the figure is the autoscaler's calibration."
    )
    requests_per_gpu_hour: float | None = Field(
        default=None, ge=0, description="Requests served per GPU-hour at that rate."
    )
    cost_per_1000_requests: float | None = Field(
        default=None, ge=0, description="Price of a thousand requests at that rate."
    )


class PlanFallback(schema.StatusSchema):
    """The planner's replica of one accelerator.fallbacks type: what its Deployment runs."""

    gpu: str | None = Field(default=None, max_length=253, description="Catalog GPU type.")
    gpu_product_label: str | None = Field(
        default=None, max_length=253, description="nvidia.com/gpu.product of that GPU type."
    )
    fits: bool | None = Field(default=None, description="Whether the model fits a replica.")
    gpus_per_replica: int | None = Field(
        default=None, ge=0, description="GPUs per replica (tensor-parallel degree)."
    )
    context: int | None = Field(
        default=None, ge=0, description="Context length in tokens the plan is for."
    )
    kv_capacity_tokens: int | None = Field(
        default=None, ge=0, description="Tokens the replica's KV cache holds."
    )
    max_num_seqs: int | None = Field(
        default=None, ge=0, description="The engine's cap on sequences in one batch."
    )
    decode_tokens_per_second: float | None = Field(
        default=None, ge=0, description="Output tokens per second at the plan's batch."
    )
    price_per_gpu_hour: float | None = Field(
        default=None, ge=0, description="Catalog price of one GPU hour."
    )
    cost_per_hour: float | None = Field(
        default=None, ge=0, description="Price of one replica hour."
    )
    cold_start_seconds: float | None = Field(
        default=None, ge=0, description="Seconds from a new pod to a replica that serves."
    )
    gpus_per_replica_reason: str | None = Field(
        default=None, max_length=4096,
        description="Why gpusPerReplica auto chose this degree on this type.",
    )
    gpus_per_replica_inputs: str | None = Field(
        default=None, max_length=64,
        description="A hash of what gpusPerReplica auto chose from (model, GPU, SLO, token "
                    "mix, method): while it matches, a restarted operator keeps the choice "
                    "instead of calibrating again.",
    )


class CapacityPlanStatus(schema.StatusSchema):
    """The capacity planner's result for one replica of this deployment."""

    model: str | None = Field(default=None, max_length=253, description="Catalog architecture.")
    hf_id: str | None = Field(
        default=None, max_length=1024, description="Hugging Face id of the model, if known."
    )
    gpu: str | None = Field(default=None, max_length=253, description="Catalog GPU type.")
    gpu_product_label: str | None = Field(
        default=None, max_length=253, description="nvidia.com/gpu.product of that GPU type."
    )
    dtype: str | None = Field(default=None, max_length=64, description="Weight data type.")
    kv_cache_dtype: str | None = Field(
        default=None, max_length=64, description="KV-cache data type."
    )
    context: int | None = Field(
        default=None, ge=0, description="Context length in tokens the plan is for."
    )
    batch: int | None = Field(
        default=None, ge=0, description="Decode batch the decode figures are for."
    )
    fits: bool | None = Field(
        default=None, description="Whether the model fits a replica at this context."
    )
    reason: str | None = Field(
        default=None, max_length=4096, description="Why it does not fit: memory needed vs free."
    )
    gpus_per_replica: int | None = Field(
        default=None, ge=0, description="GPUs per replica (tensor-parallel degree)."
    )
    parameters: int | None = Field(default=None, ge=0, description="Model parameters.")
    weights_bytes: int | None = Field(
        default=None, ge=0, description="Weights of the whole model, in bytes."
    )
    weights_bytes_per_gpu: int | None = Field(
        default=None, ge=0, description="Weights on each GPU, in bytes."
    )
    kv_bytes_per_token: int | None = Field(
        default=None, ge=0, description="KV-cache bytes one token takes, over all GPUs."
    )
    memory_per_gpu: PlanMemory | None = Field(
        default=None, description="How one GPU's memory is split."
    )
    kv_capacity_tokens: int | None = Field(
        default=None, ge=0, description="Tokens the replica's KV cache holds."
    )
    max_num_seqs: int | None = Field(
        default=None, ge=0, description="The engine's cap on sequences in one batch."
    )
    max_num_batched_tokens: int | None = Field(
        default=None, ge=0, description="The engine's cap on tokens in one scheduler step."
    )
    max_concurrent_sequences: int | None = Field(
        default=None, ge=0, description="Full-context sequences the replica runs at once."
    )
    decode_step_seconds: float | None = Field(
        default=None, ge=0, description="Seconds of one decode step at batch and context."
    )
    decode_tokens_per_second: float | None = Field(
        default=None, ge=0, description="Output tokens per second at batch."
    )
    prefill_seconds: float | None = Field(
        default=None, ge=0, description="Seconds to prefill one context-long prompt when idle."
    )
    prefill_tokens_per_second: float | None = Field(
        default=None, ge=0, description="Prompt tokens per second when prefilling."
    )
    price_per_gpu_hour: float | None = Field(
        default=None, ge=0, description="Catalog price of one GPU hour."
    )
    cost_per_hour: float | None = Field(
        default=None, ge=0, description="Price of one replica hour."
    )
    storage: PlanStorage | None = Field(
        default=None, description="Where the weights come from and how long loading takes."
    )
    cold_start_seconds: float | None = Field(
        default=None, ge=0, description="Seconds from a new pod to a replica that serves."
    )
    efficiency: PlanEfficiency | None = Field(
        default=None, description="Achieved fractions of datasheet peaks the plan assumes."
    )
    notes: list[str] = Field(
        default_factory=list, max_length=64, description="What the planner wants you to know."
    )
    autoscaling: PlanAutoscaling | None = Field(
        default=None, description="What the autoscaler aims at per replica."
    )
    gpus_per_replica_reason: str | None = Field(
        default=None, max_length=4096,
        description="Why gpusPerReplica auto chose this degree: its cost per request at the "
                    "SLO against the other degrees'.",
    )
    gpus_per_replica_candidates: list[PlanCandidate] = Field(
        default_factory=list, max_length=64,
        description="Every degree gpusPerReplica auto weighed, with its capacity.",
    )
    gpus_per_replica_inputs: str | None = Field(
        default=None, max_length=64,
        description="A hash of what gpusPerReplica auto chose from (model, GPU, SLO, token "
                    "mix, method): while it matches, a restarted operator keeps the choice "
                    "instead of calibrating again.",
    )
    fallbacks: list[PlanFallback] | None = Field(
        default=None, max_length=8,
        description="A replica of each accelerator.fallbacks type, in the spec's order; the "
                    "fields above are the primary type's.",
    )


def capacity_plan_status(plan: Mapping[str, Any],
                         autoscaling: Mapping[str, Any] | None = None, *,
                         fallbacks: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """A planner dict (`CapacityPlan.to_dict()`, snake_case) as `status.capacityPlan`, with
    the plans of the fallback types (planner dicts too) under `fallbacks`."""
    merged = {**plan, **({"autoscaling": dict(autoscaling)} if autoscaling else {})}
    if fallbacks:
        merged["fallbacks"] = [dict(f) for f in fallbacks]
    return CapacityPlanStatus.model_validate(merged).to_dict()


def autoscaling_status(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The autoscaler's target summary (snake_case) as `status.capacityPlan.autoscaling`."""
    return PlanAutoscaling.model_validate(dict(summary)).to_dict()
