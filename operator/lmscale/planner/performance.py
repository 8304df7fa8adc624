"""How fast one replica runs: a roofline model of one continuous-batching engine step.

A step of an engine like vLLM runs every layer once over a batch of tokens: the prompt tokens
it prefills and one token for each decoding sequence. Its time is the sum of two rooflines
(Williams et al. 2009), because the two kinds of kernels run one after the other:
- the linear layers: the larger of streaming the weights once (for MoE only the experts the
  batch routes to) at the achieved HBM bandwidth, and their 2 FLOPs per active parameter per
  token (Kaplan et al. 2020, C_forward ~ 2N) at the achieved tensor-core rate;
- attention: the larger of reading every decoding sequence's cached keys and values, and its
  4 * layers * heads * head_dim FLOPs per (query, key) pair;
plus costs that follow the shapes: the ramp of every weight matrix a step streams (a small
matrix reaches a smaller share of the bandwidth than a large one, which is how a 1B model or
a tensor-parallel shard differs from an 8B model; a compute-bound GEMM hides it), one per layer
for the rest of its kernels (norms, rotary, attention, activation), a fixed cost per step
on the CPU (scheduling, input preparation, sampling) and, across GPUs, two all-reduces per
layer (Megatron-LM, Shoeybi et al. 2019) of the batch's hidden states.

Adding the two rooflines instead of taking one maximum over the step is what the H200
measurement demands: at batch 512 the linear layers are compute-bound while attention is still
bandwidth-bound, and the step takes the sum (docs/capacity.md, "Calibration").
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from lmscale.planner import catalog, kvcache, weights

if TYPE_CHECKING:
    from lmscale.planner.plan import CapacityPlan


@dataclasses.dataclass(frozen=True, kw_only=True)
class Efficiency:
    """Achieved fractions of datasheet peaks, and fixed costs.

    Measured on an NVIDIA H200 (141 GB, 4.8 TB/s, 989 dense bf16 TFLOP/s) with
    hack/calibrate/ (raw figures in docs/calibration/). Decode GEMVs of three shapes (4096 x
    4096, 4096 x 14336, 8192 x 8192; 34 to 134 MB) take 5.3 us plus their bytes at 4.59 TB/s
    each, to within 0.1%: a matrix's achieved share of the bandwidth grows with its size
    (0.55 at 34 MB, 0.81 at 134 MB), so it is a launch cost per matrix plus a streaming
    share (`matrix_overhead_s`, `bandwidth`) rather than one share for every model. With
    those, a Llama-3.1-8B-shaped decode step in one CUDA graph at 10 (batch, context) points
    from (1, 256) to (512, 1024) is fitted to within 7% (batch 1 at 8k context is left out:
    torch's attention has no split-KV) by bandwidth 0.88, compute 0.58 and 38 us per layer
    for the kernels other than the four GEMMs; a whole 8B prefill of 512 to 16384 tokens
    runs at 0.57-0.59 of peak. Other GPU types use the same fractions of their own datasheet
    peaks and the same fixed costs. Not measured: whole steps of other model sizes, so the
    per-layer term is an 8B fit (docs/capacity.md, "Step model across sizes").
    """

    # Achieved / datasheet HBM bandwidth for streaming weights and the KV cache, once a
    # matrix's ramp is paid (GEMV slope: 0.96; whole 8B steps: 0.88).
    bandwidth: float = 0.88
    # Per weight matrix read in a step: launch and ramp of its GEMM (GEMV fit: 5.3 us).
    matrix_overhead_s: float = 5.3e-6
    # Achieved / datasheet dense tensor-core FLOP/s for whole layers (fitted: 0.57-0.60).
    compute: float = 0.58
    # Per layer per step besides its GEMMs: norms, rotary, attention, activation, residual
    # adds inside a CUDA graph (8B fit: 38 us).
    layer_overhead_s: float = 38e-6
    # Per step on the CPU: scheduling, input preparation, sampling. Not measured (vLLM was
    # not installed on the calibration machine): an assumption, after vLLM's V1 post
    # (2025-01-27) that CPU work is a noticeable share of a ~5 ms Llama-8B step on an H100
    # and that V1 overlaps most of it with the GPU.
    step_overhead_s: float = 0.5e-3
    # Per all-reduce: NCCL / vLLM custom all-reduce latency for small messages over NVLink;
    # PCIe GPUs pay `pcie_latency_factor` times more.
    allreduce_latency_s: float = 10e-6
    pcie_latency_factor: float = 3.0
    # Achieved / datasheet interconnect bandwidth for all-reduce traffic (nccl-tests bus
    # bandwidth is typically 70-80% of the link rate).
    interconnect: float = 0.7


DEFAULT_EFFICIENCY = Efficiency()


def compute_tflops(gpu: catalog.GpuType, dtype: str) -> float:
    """Dense tensor-core rate a replica's matmuls run at for weights in `dtype`.

    FP8 weights use FP8 tensor cores where the GPU has them (W8A8), else run weight-only at
    the 16-bit rate (Marlin W8A16); int4 (AWQ/GPTQ) dequantises to 16-bit. 0 = unsupported.
    """
    name = weights.canonical_dtype(dtype)
    if name not in gpu.supported_dtypes:
        return 0.0
    if name == "float8" and gpu.fp8_tflops > 0:
        return gpu.fp8_tflops
    if name == "float16":
        return gpu.fp16_tflops
    # bfloat16, and weight-only formats whose activations are 16-bit.
    return gpu.bf16_tflops or gpu.fp16_tflops


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ReplicaPerformance:
    """One replica's speed, capacity, start-up delay and price, for simulators and autoscalers.

    The `*_s` coefficients are precomputed so `step_seconds` is a handful of float operations:
    the simulator calls it for every engine step of every replica.
    """

    gpus: int
    cost_per_hour: float
    kv_capacity_tokens: int
    max_num_seqs: int
    max_num_batched_tokens: int
    cold_start_seconds: float
    # Coefficients of the step-time model (seconds).
    fixed_s: float = 0.0  # per step, whatever its size
    weights_s: float = 0.0  # streaming the dense (non-expert) weights once
    experts_s: float = 0.0  # streaming every routed expert once (0 for dense models)
    expert_skip: float = 0.0  # chance one token leaves a given expert untouched: 1 - k/E
    kv_s_per_token: float = 0.0  # reading one cached token's K and V in every layer
    compute_s_per_token: float = 0.0  # 2 * active linear parameters of FLOPs, one token
    head_s_per_seq: float = 0.0  # the LM head for one sampled token
    attention_s_per_pair: float = 0.0  # attention FLOPs for one (query, key) pair
    comm_s_per_token: float = 0.0  # all-reduce traffic of one token's hidden states

    def step_seconds(self, *, prefill_tokens: int, decode_seqs: int, kv_tokens: int) -> float:
        """One engine step: prefill `prefill_tokens` prompt tokens and decode one token for
        each of `decode_seqs` sequences whose caches hold `kv_tokens` tokens in total.

        The prefill tokens are taken as one chunk attending causally to itself.
        """
        tokens = prefill_tokens + decode_seqs
        if tokens <= 0:
            return 0.0
        linear_memory = self.weights_s
        if self.experts_s:
            linear_memory += self.experts_s * (1.0 - self.expert_skip**tokens)
        linear_compute = tokens * self.compute_s_per_token + decode_seqs * self.head_s_per_seq
        attention_memory = kv_tokens * self.kv_s_per_token
        attention_compute = (
            kv_tokens + 0.5 * prefill_tokens * prefill_tokens
        ) * self.attention_s_per_pair
        return (
            self.fixed_s
            + tokens * self.comm_s_per_token
            + (linear_memory if linear_memory > linear_compute else linear_compute)
            + (attention_memory if attention_memory > attention_compute else attention_compute)
        )

    def decode_step_seconds(self, batch: int, context: int) -> float:
        """One decode step for `batch` sequences each holding `context` tokens."""
        return self.step_seconds(prefill_tokens=0, decode_seqs=batch, kv_tokens=batch * context)

    def prefill_seconds(self, tokens: int) -> float:
        """Prefill one prompt of `tokens` tokens on an idle replica, chunk by chunk.

        Each chunk also attends to (and reads the cache of) the chunks before it.
        """
        chunk = max(1, self.max_num_batched_tokens)
        total, done = 0.0, 0
        while done < tokens:
            n = min(chunk, tokens - done)
            linear_memory = self.weights_s + self.experts_s * (1.0 - self.expert_skip**n)
            linear = max(linear_memory, n * self.compute_s_per_token)
            attention = max(done * self.kv_s_per_token,
                            (n * done + 0.5 * n * n) * self.attention_s_per_pair)
            total += self.fixed_s + n * self.comm_s_per_token + linear + attention
            done += n
        # The first output token comes from the LM head of the last prompt position.
        return total + self.head_s_per_seq if tokens > 0 else 0.0


def replica_performance(
    plan: CapacityPlan, *, efficiency: Efficiency | None = None
) -> ReplicaPerformance:
    """The step-time model of a plan's replica; the plan must fit."""
    if not plan.fits:
        raise ValueError(f"{plan.model.key} on {plan.gpu.key} does not fit: {plan.reason}")
    return build(
        plan.model,
        plan.gpu,
        dtype=plan.dtype,
        kv_dtype=plan.kv_cache_dtype,
        tp=plan.gpus_per_replica,
        kv_capacity_tokens=plan.kv_capacity_tokens,
        max_num_seqs=plan.max_num_seqs,
        max_num_batched_tokens=plan.max_num_batched_tokens,
        cold_start_seconds=plan.cold_start_seconds,
        cost_per_hour=plan.cost_per_hour,
        efficiency=efficiency or plan.efficiency,
    )


def build(
    model: catalog.ModelArchitecture,
    gpu: catalog.GpuType,
    *,
    dtype: str,
    kv_dtype: str,
    tp: int,
    kv_capacity_tokens: int,
    max_num_seqs: int,
    max_num_batched_tokens: int,
    cold_start_seconds: float,
    cost_per_hour: float,
    efficiency: Efficiency = DEFAULT_EFFICIENCY,
) -> ReplicaPerformance:
    """Precompute the step-time coefficients for a tp-way replica of `model` on `gpu`."""
    flops = compute_tflops(gpu, dtype) * 1e12 * efficiency.compute
    if flops <= 0:
        raise ValueError(f"{gpu.key} cannot run {dtype} weights")
    bandwidth = gpu.bandwidth_bytes_per_second * efficiency.bandwidth
    all_weights = weights.weight_bytes(model, dtype) - weights.unread_bytes(model)
    expert_bytes = weights.expert_weight_bytes(model, dtype)
    count = weights.parameter_count(model)
    q_width = model.attention_heads * model.head_dim
    comm_s_per_token = 0.0
    # vLLM fuses QKV and gate/up: four GEMMs a layer, a fifth for an MoE router, one LM
    # head. Each ramps up before it streams; a compute-bound GEMM hides that.
    matrices = model.layers * (4 + (1 if model.is_moe else 0)) + 1
    ramp = matrices * efficiency.matrix_overhead_s
    fixed = efficiency.step_overhead_s + model.layers * efficiency.layer_overhead_s
    if tp > 1:
        # Ring all-reduce moves 2(tp-1)/tp of the message per GPU; two per layer.
        link = gpu.interconnect_bytes_per_second * efficiency.interconnect
        message = model.hidden_size * 2  # one token's 16-bit hidden state
        comm_s_per_token = 2 * model.layers * 2 * (tp - 1) / tp * message / link
        latency = efficiency.allreduce_latency_s
        if gpu.interconnect.startswith("pcie"):
            latency *= efficiency.pcie_latency_factor
        fixed += 2 * model.layers * latency
    head_flops = 2.0 * model.vocab_size * model.hidden_size
    return ReplicaPerformance(
        gpus=tp,
        cost_per_hour=cost_per_hour,
        kv_capacity_tokens=kv_capacity_tokens,
        max_num_seqs=max_num_seqs,
        max_num_batched_tokens=max_num_batched_tokens,
        cold_start_seconds=cold_start_seconds,
        fixed_s=fixed,
        weights_s=(all_weights - expert_bytes) / tp / bandwidth + ramp,
        experts_s=expert_bytes / tp / bandwidth,
        expert_skip=1.0 - model.experts_per_token / model.experts if model.is_moe else 0.0,
        kv_s_per_token=kvcache.kv_bytes_per_token_per_gpu(model, kv_dtype, tp) / bandwidth,
        compute_s_per_token=2.0 * count.active_linear / tp / flops,
        head_s_per_seq=head_flops / tp / flops,
        attention_s_per_pair=4.0 * model.layers * q_width / tp / flops,
        comm_s_per_token=comm_s_per_token,
    )
