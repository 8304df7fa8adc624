#!/usr/bin/env python3
"""Generate docs/capacity.md: the planner's method, its calibration, a plan for every
catalog model on every GPU type at 4k and 32k context, and `gpusPerReplica: auto`'s choice
for each at 8k under two SLOs.

    .venv/bin/python hack/gen_capacity_doc.py            # write docs/capacity.md
    .venv/bin/python hack/gen_capacity_doc.py --check    # exit 1 if it is out of date

The auto table runs the autoscaler's calibration for every candidate auto weighs (a few
hundred, minutes of CPU each batch); `--cache FILE` keeps them between runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lmscale.planner import auto, catalog, memory, parallelism, performance, plan, step_errors

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "docs" / "capacity.md"
CALIBRATION = REPO / "docs" / "calibration"
CONTEXTS = (4096, 32768)
AUTO_CONTEXT = 8192
# The resource's default SLO and a tighter interactive one, both at its default token mix.
SLOS = {
    "chat": auto.Workload(ttft_p95_s=1.0, tpot_p95_s=0.1, mean_prompt_tokens=1024,
                          mean_output_tokens=256),
    "interactive": auto.Workload(ttft_p95_s=0.5, tpot_p95_s=0.05, mean_prompt_tokens=1024,
                                 mean_output_tokens=256),
}
GIB = float(catalog.GIB)


def _dtype_for(gpu: catalog.GpuType) -> str:
    """bfloat16 where the GPU has it; the T4 runs float16."""
    return "bfloat16" if "bfloat16" in gpu.supported_dtypes else "float16"


def _short_reason(result: plan.CapacityPlan) -> str:
    reason = result.reason or ""
    if "needs" in reason:
        mem = result.memory
        return (f"does not fit: needs {(mem.reserved / GIB):.0f}+ GiB/GPU, "
                f"has {mem.usable / GIB:.0f} at {result.gpus_per_replica} GPUs")
    if "exceeds" in reason and "maximum" in reason:
        return f"context above the model's {result.model.max_context:,}"
    return reason


def _row(result: plan.CapacityPlan, context: int) -> str:
    gpu = result.gpu.key + (" (fp16)" if result.dtype == "float16" else "")
    name = result.model.key
    if result.context < context:
        name += f" (at its maximum, {result.context:,})"
    if not result.fits:
        return f"| {name} | {gpu} | - | {_short_reason(result)} | | | | | | |"
    perf = performance.replica_performance(result)
    one = perf.decode_step_seconds(1, result.context)
    return (
        f"| {name} | {gpu} | {result.gpus_per_replica} "
        f"| {result.memory.weights / GIB:.1f} GiB "
        f"| {result.kv_capacity_tokens:,} "
        f"| {result.max_concurrent_sequences:,} "
        f"| {one * 1e3:.1f} "
        f"| {result.decode_tokens_per_second or 0:,.0f} "
        f"| {result.prefill_tokens_per_second or 0:,.0f} "
        f"| {result.cost_per_hour:.2f} |"
    )


def plan_tables() -> str:
    header = (
        "| model | GPU | GPUs | weights/GPU | KV tokens | seqs | decode ms (batch 1) "
        "| decode tok/s (all seqs) | prefill tok/s | $/h |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    parts = []
    for context in CONTEXTS:
        rows = []
        for model in catalog.models():
            for gpu in catalog.gpus():
                result = plan.plan_replica(model, gpu, dtype=_dtype_for(gpu),
                                           context=min(context, model.max_context))
                rows.append(_row(result, context))
        parts.append(f"### {context // 1024}k context ({context:,} tokens)\n\n{header}\n"
                     + "\n".join(rows))
    return "\n\n".join(parts)


def _load(name: str) -> dict[str, Any] | None:
    path = CALIBRATION / name
    return json.loads(path.read_text()) if path.exists() else None


def calibration_section() -> str:
    micro, step = _load("h200-microbench.json"), _load("h200-decode-step.json")
    if not micro or not step:
        return "No calibration data in docs/calibration/; the defaults are published figures."
    gpu = catalog.gpu("nvidia-h200")
    peak_bw, peak_fl = gpu.bandwidth_bytes_per_second, gpu.bf16_tflops * 1e12
    bw = micro["bandwidth"]
    lines = [
        f"Measured on one {micro['device']['name']} (driver and versions in "
        "`docs/calibration/h200-microbench.json`; torch "
        f"{micro['environment']['torch']}, no vLLM on the machine) with "
        "`hack/calibrate/gpu_microbench.py` and `hack/calibrate/decode_step_bench.py`.",
        "",
        "| measurement | achieved | fraction of datasheet |",
        "|---|---:|---:|",
        f"| device memory (cudaMemGetInfo) | {micro['memory']['total_mib']:,.0f} MiB "
        f"| nvidia-smi: {gpu.memory_mib:,} MiB |",
        f"| 4 GiB device-to-device copy | {bw['copy_bytes_per_second'] / 1e12:.2f} TB/s "
        f"| {bw['copy_bytes_per_second'] / peak_bw:.2f} |",
        f"| 4 GiB reduction (read only) | {bw['reduce_bytes_per_second'] / 1e12:.2f} TB/s "
        f"| {bw['reduce_bytes_per_second'] / peak_bw:.2f} |",
    ]
    for k, n in ((8192, 8192), (4096, 14336), (4096, 4096)):
        rows = [r for r in micro["decode_gemm"] if r["k"] == k and r["n"] == n and r["m"] <= 16]
        if rows:
            best = sum(r["weight_bytes_per_second"] for r in rows) / len(rows)
            lines.append(f"| decode GEMV, {k}x{n} weights, M=1..16, CUDA graph "
                         f"| {best / 1e12:.2f} TB/s | {best / peak_bw:.2f} |")
    for m in (2048, 8192):
        rows = [r for r in micro["prefill_gemm"] if r.get("m") == m and "flops_per_second" in r]
        for dtype, peak in (("bfloat16", peak_fl), ("float8", gpu.fp8_tflops * 1e12)):
            chosen = [r["flops_per_second"] for r in rows if r["dtype"] == dtype]
            if chosen:
                mean = sum(chosen) / len(chosen)
                lines.append(f"| {dtype} GEMM, M={m}, mean of {len(chosen)} shapes "
                             f"| {mean / 1e12:,.0f} TFLOP/s | {mean / peak:.2f} |")
    for row in step.get("prefill", []):
        if "flops_per_second" in row:
            lines.append(f"| Llama-8B-shaped prefill, {row['tokens']:,} tokens "
                         f"| {row['flops_per_second'] / 1e12:,.0f} TFLOP/s "
                         f"| {row['flops_per_second'] / peak_fl:.2f} |")
    for row in step.get("attention", []):
        if "flops_per_second" in row:
            lines.append(f"| causal attention alone, {row['tokens']:,} tokens "
                         f"| {row['flops_per_second'] / 1e12:,.0f} TFLOP/s "
                         f"| {row['flops_per_second'] / peak_fl:.2f} |")
    lines += ["", _decode_fit(step)]
    return "\n".join(lines)


def _decode_fit(step: dict[str, Any]) -> str:
    perf = performance.replica_performance(plan.plan_replica("llama-3.1-8b", "nvidia-h200"))
    overhead = performance.DEFAULT_EFFICIENCY.step_overhead_s
    lines = [
        "A Llama-3.1-8B-shaped decode step (32 layers, random bf16 weights, a KV cache of "
        "`batch` x `context` tokens, the whole step in one CUDA graph) against the model "
        "with the default factors (the model's CPU step overhead taken out, since the "
        "benchmark has none):",
        "",
        "| batch | context | measured ms | model ms | error |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in step["decode"]:
        if "seconds" not in row:
            continue
        model = perf.decode_step_seconds(row["batch"], row["context"]) - overhead
        lines.append(f"| {row['batch']} | {row['context']:,} | {row['seconds'] * 1e3:.2f} "
                     f"| {model * 1e3:.2f} | {model / row['seconds'] - 1:+.0%} |")
    return "\n".join(lines)


class CachedCalibration:
    """auto.calibrated_rps, remembered in JSON files so a long run can resume (new values go
    to the first file; several runs, one SLO each, can fill one file each)."""

    def __init__(self, paths: list[Path] | None, *, compute: bool = True) -> None:
        self.path = paths[0] if paths else None
        self.compute = compute
        self.pending: set[str] = set()  # estimated because not calibrated yet (compute off)
        self.values: dict[str, float] = {}
        for path in paths or []:
            if path.exists():
                self.values.update(json.loads(path.read_text()))

    def __call__(self, perf: performance.ReplicaPerformance, workload: auto.Workload) -> float:
        key = repr((perf, workload))
        if key not in self.values and not self.compute:
            self.pending.add(key)
            return auto.estimated_rps(perf, workload)
        if key not in self.values:
            self.values[key] = auto.calibrated_rps(perf, workload)
            if self.path is not None:
                self.path.write_text(json.dumps(self.values))
        return self.values[key]


def _auto_cell(choice: auto.Choice) -> str:
    parts = []
    for option in choice.options:
        if option.problem is not None:
            text = f"{option.gpus}: misses SLO"
        else:
            mark = "" if option.calibrated_rps is not None else "~"
            text = f"{option.gpus}: {mark}{option.requests_per_gpu_hour:,.0f}"
        parts.append(f"**{text}**" if option.plan is choice.plan else text)
    return " / ".join(parts)


def auto_tables(measure: CachedCalibration, only: str | None = None,
                order: Any = lambda model: 0) -> str:
    header = ("| model | GPU | auto | requests per GPU-hour at each GPUs per replica "
              "(chosen in bold, ~ estimated) | why |\n|---|---|---:|---|---|")
    parts = []
    for name, workload in SLOS.items():
        if only is not None and name != only:
            continue
        rows = []
        for model in sorted(catalog.models(), key=order):
            for gpu in catalog.gpus():
                context = min(AUTO_CONTEXT, model.max_context)
                plans = [plan.plan_replica(model, gpu, dtype=_dtype_for(gpu), context=context,
                                           gpus_per_replica=tp)
                         for tp in parallelism.valid_tp_degrees(model, gpu)]
                pending = len(measure.pending)
                choice = auto.choose(plans, workload, measure=measure)
                gpu_name = gpu.key + (" (fp16)" if _dtype_for(gpu) == "float16" else "")
                if choice is None:
                    rows.append(f"| {model.key} | {gpu_name} | - | does not fit | |")
                    continue
                why = (choice.reason.split("); ", 1)[1] if "); " in choice.reason
                       else "the only candidate")
                if len(measure.pending) > pending:
                    why = "not calibrated yet, ranked by the estimate: " + why
                rows.append(f"| {model.key} | {gpu_name} | {choice.plan.gpus_per_replica} "
                            f"| {_auto_cell(choice)} | {why} |")
        parts.append(f"### {name}: {workload.describe()}\n\n{header}\n" + "\n".join(rows))
    return "\n\n".join(parts)


def _one_b_decode_ms() -> float:
    """GPU time of a Llama-3.2-1B decode step at batch 1, 1k context, on one H200."""
    perf = performance.replica_performance(plan.plan_replica("llama-3.2-1b", "nvidia-h200",
                                                             context=4096))
    seconds = perf.decode_step_seconds(1, 1024) - performance.DEFAULT_EFFICIENCY.step_overhead_s
    return seconds * 1e3


def step_error_section() -> str:
    micro = _load("h200-microbench.json")
    steps = [json.loads(path.read_text())
             for path in sorted(CALIBRATION.glob("h200-decode-step*.json"))]
    if not micro or not steps:
        return "No measurements in docs/calibration/."
    baseline = performance.Efficiency(bandwidth=0.84, matrix_overhead_s=0.0,
                                      layer_overhead_s=48e-6)
    lines = ["| measured on the H200 | points | median error | worst | before: median, worst |",
             "|---|---:|---:|---:|---:|"]
    left_out = []
    for now, old in zip(step_errors.groups(micro, steps),
                        step_errors.groups(micro, steps, baseline), strict=True):
        lines.append(f"| {now.name} | {len(now.errors)} | {now.median:.1%} | {now.worst:+.1%} "
                     f"| {old.median:.1%}, {old.worst:+.1%} |")
        left_out += [f"{now.name}, {point}: {error:+.0%} ({why})"
                     for point, error, why in now.excluded]
    if left_out:
        lines += ["", "Left out of the figures: " + "; ".join(left_out) + "."]
    return "\n".join(lines)


def step_error_size_section() -> str:
    """The step model's error per model size: the goal is stated per size, and a size the fit
    did not use is where it would fail first."""
    micro = _load("h200-microbench.json")
    steps = [json.loads(path.read_text())
             for path in sorted(CALIBRATION.glob("h200-decode-step*.json"))]
    found = step_errors.groups(micro, steps) if micro and steps else []
    for path in sorted(CALIBRATION.glob("published-*.json")):
        found += step_errors.published(json.loads(path.read_text()))
    summaries = step_errors.by_size(found)
    if not summaries:
        return "No whole-model measurements in docs/calibration/."
    lines = ["| size | what | points | median error | worst | goal | measured by |",
             "|---|---|---:|---:|---:|---|---|"]
    for summary in summaries:
        lines.append(f"| {summary.size} | {summary.kind} | {len(summary.errors)} "
                     f"| {summary.median:.1%} | {summary.worst:+.1%} "
                     f"| {'met' if summary.meets_goal else '**not met**'} "
                     f"| {'; '.join(summary.sources)} |")
    missing = step_errors.unmeasured_sizes(summaries)
    if missing:
        lines += ["", "No measurement of any kind for the catalog's "
                  + ", ".join(missing) + " models: the goal is not shown on those sizes."]
    return "\n".join(lines)


def render(measure: CachedCalibration | None = None, only: str | None = None) -> str:
    eff = performance.DEFAULT_EFFICIENCY
    return TEMPLATE.format(
        bandwidth=eff.bandwidth, compute=eff.compute,
        layer_us=eff.layer_overhead_s * 1e6, step_ms=eff.step_overhead_s * 1e3,
        fraction=memory.DEFAULT_MEMORY_FRACTION,
        non_torch=memory.NON_TORCH_BYTES / GIB, nccl=memory.NCCL_BYTES / GIB,
        graphs=memory.CUDA_GRAPH_BYTES / GIB,
        driver=memory.DRIVER_RESERVED_BYTES / catalog.MIB,
        calibration=calibration_section(),
        tables=plan_tables(),
        auto_context=AUTO_CONTEXT,
        auto_tables=auto_tables(measure or CachedCalibration(None), only),
        step_errors=step_error_section(),
        step_errors_by_size=step_error_size_section(),
        one_b_ms=_one_b_decode_ms(),
        matrix_us=eff.matrix_overhead_s * 1e6,
    )


TEMPLATE = """\
# Capacity planning

<!-- Generated by hack/gen_capacity_doc.py; edit that script, not this file. -->

`lmscale plan` answers, before any GPU is spent: how many GPUs one replica of a model needs,
how many sequences it holds, how fast it prefills and decodes, what it costs, and how long a
new replica takes to start. The reconciler writes the same plan to `status.capacityPlan`,
the autoscaler calibrates its per-replica target on the engine model the simulator steps
with `planner.performance.ReplicaPerformance.step_seconds`.

```
lmscale plan --model llama-3.1-8b --gpu nvidia-h100-80gb --context 4096 --batch 64
lmscale plan -f chat.yaml --output json               # a LanguageModelDeployment
lmscale plan --model llama-3.1-70b --rate 5 --slo-ttft-ms 1000 --slo-tpot-ms 80
lmscale plan --list                                   # catalog keys
```

## How a plan is computed

Each step is a small function in `operator/lmscale/planner/` whose docstring cites its source.

1. **Weights** (`weights.py`): parameters counted from the architecture (attention with
   grouped-query K/V, gated or plain MLP, MoE experts, embeddings, norms, biases) and checked
   against every model card; bytes by dtype as the quantised checkpoints lay them out
   (fp8 and int4 shrink the blocks' linear layers; embeddings and LM head stay 16-bit).
2. **KV cache** (`kvcache.py`): `2 x layers x kv_heads x head_dim x bytes` per token;
   each GPU of a tp-way replica holds `max(1, kv_heads / tp)` heads; 16-token pages.
3. **Memory per GPU** (`memory.py`): vLLM's budget, `{fraction}` x (nvidia-smi total minus
   {driver:.0f} MiB the driver keeps), less weights / tp, the activation peak of a profile run
   over `max_num_batched_tokens` tokens plus float32 logits for every sequence slot,
   {non_torch:.2f} GiB outside PyTorch (+{nccl:.2f} GiB NCCL when tp > 1), and the part of a
   {graphs:.2f} GiB CUDA-graph reserve the remaining headroom cannot hold. The rest is KV cache.
   Checked against a vLLM log (Llama-3.1-8B on an RTX 3090: 1952 blocks reported, the
   planner gives 8% fewer, never more).
4. **Tensor parallelism** (`parallelism.py`, `auto.py`): the degrees that divide the
   attention heads and the MLP width, split or replicate the KV heads evenly, stay within one
   node's GPUs, and hold the requested batch (or one sequence) at the requested context. With
   `gpusPerReplica: auto` (the default, in the operator and in `lmscale plan` alike) the one
   with the lowest cost per served request at the resource's SLO and token mix wins (see
   "Choosing the GPUs per replica" below); an explicit degree is planned as given.
5. **Engine limits** (`engine.py`): vLLM's defaults for `vllm serve` (1024 sequences and an
   8192-token step on >= 70 GiB GPUs other than A100, else 256 and 2048).
6. **Step time** (`performance.py`): per engine step, the linear layers take the larger of
   streaming their weights at {bandwidth:.2f} of the HBM bandwidth and 2 FLOPs per active
   parameter per token at {compute:.2f} of the dense tensor-core rate; attention takes the
   larger of reading the batch's KV cache and its FLOPs; the two add up, plus {matrix_us:.1f} us
   per weight matrix read (four a layer, and the LM head), {layer_us:.0f} us per layer for its
   other kernels, {step_ms:.1f} ms per step on the CPU, and two all-reduces per layer across
   GPUs.
7. **SLO** (`slo.py`): with `n` requests in flight, TPOT is one step decoding `n` sequences
   and prefilling their share of prompt tokens; TTFT is the prompt's chunks at the budget
   left by the decodes plus an M/D/1 queueing wait; both means must stay within 0.8 of the
   95th-percentile objectives. The largest such `n` is the autoscaler's target, and Little's
   law turns it into replicas for a request rate.
8. **Storage** (`storage.py`): checkpoint bytes to fetch, a volume with 20% headroom, and a
   cold start of fetch time at a stated bandwidth (Hub 250 MB/s, object store 1 GB/s, volume
   500 MB/s; `--load-bandwidth-mbps` overrides) plus 45 s of engine start.
9. **Recommendation** (`recommend.py`): every GPU type and valid degree, ranked by the cost
   of the replicas the load needs within the SLO (after Mélange, Griggs et al. 2024); each
   loser gets its reason (does not fit, misses the SLO even alone, or costs more).

Prices are indicative on-demand USD per GPU-hour; pass `--price GPU=USD` or a catalog file
(`--catalog FILE`, `LMSCALE_CATALOG_DIR`) with your own.

## Calibration

{calibration}

What the numbers say, and what the planner takes from them:
- Whole steps reach less than isolated kernels: a copy streams at 0.88 of the datasheet,
  decode-shaped GEMVs at 0.81-0.83, but a step's many smaller kernels add a fixed cost of
  about 48 us per layer. Fitting bandwidth, per-layer cost and decode-GEMM compute to the 11
  decode points gives 0.84, 48 us and 0.60; whole-model prefill runs at 0.57-0.59 of the bf16
  peak (isolated large GEMMs: 0.66-0.77). The defaults are bandwidth {bandwidth:.2f}, compute
  {compute:.2f}, {layer_us:.0f} us per layer.
- A single maximum over the whole step (weights + KV against all FLOPs) underestimates large
  batches by up to 30%: at batch 512 the linear layers are compute-bound while attention
  still streams the cache, so the planner adds the two rooflines.
- Batch 1 at 8k context measured 7.9 ms against the model's 5.5 ms: torch's attention has no
  split-KV path for a single sequence; vLLM's FlashAttention/FlashInfer decode kernels do,
  so the model keeps the bandwidth figure there.
- Not measured: vLLM's CPU cost per step ({step_ms:.1f} ms is an assumption; vLLM was not
  installed on the calibration machine and it had no network), KV capacity as vLLM reports it
  on this GPU, multi-GPU all-reduce (one GPU), and other GPU types, which use the same
  fractions of their own datasheet figures.

## Choosing the GPUs per replica

The fewest GPUs that hold one sequence are rarely the cheapest way to serve: two H100s hold a
70B model's weights but only two 8k sequences, four hold 57. `gpusPerReplica: auto` plans
every degree the model's shape allows and that fits, and takes the capacity of each from the
autoscaler's own calibration (`lmscale.sim.calibrate`: the requests per second one replica
carries while 99% of requests meet both objectives, at the resource's token mix and
tolerance). Cost per request is the replica's hourly price over that capacity; the lowest
wins, and within 5% of it the fewest GPUs (a finer scaling step, a smaller share of the fleet
per failure). The plan says why, in `status.capacityPlan.gpus_per_replica_reason` and in
`lmscale plan`'s `why` row, with every candidate in `gpus_per_replica_candidates`:

```
$ lmscale plan --model llama-3.1-70b --gpu nvidia-h100-80gb --context 8192
gpus per replica        4
why                     4 GPUs per replica: the lowest cost per request at TTFT p95 1000 ms,
                        TPOT p95 100 ms, 1024 prompt + 256 output tokens (7.75 req/s per
                        replica, calibrated; $0.429 per 1000 requests); ...
```

The operator and `lmscale plan` plan the same input the same way (a unit test runs both on
every example): the context is `model.maxContextLength`, else the model's maximum (vLLM's
own default for `--max-model-len`); the SLO and token mix are `spec.slo`'s (or the flags),
with the resource's defaults (TTFT 1000 ms, TPOT 100 ms, 1024 + 256 tokens) where unset.
Without `--gpu`, `lmscale plan` chooses the GPU type the same way. `lmscale plan` exits 1
when nothing fits, 2 on bad input.

**What it costs.** A calibration takes seconds of CPU (about 3-5 s for one candidate on an
idle core; three to four times that on a busy one), so auto first estimates every
candidate's capacity with the mean-latency model of `slo.py` (microseconds) and calibrates
only those within 1.3x of the best estimate: one to three per resource, none when one
candidate is left. Calibrations are cached by their inputs for the life of the process, and
the scaler's calibration of the chosen plan is the same cached result, so auto adds the
runners-up's calibrations to the one the autoscaler needed anyway. A new resource therefore
takes that much longer to get its Deployment; an unchanged one costs nothing more.

The tables below are auto's choices at {auto_context:,} tokens of context (models with a
shorter maximum at it), bfloat16 (float16 on the T4), vLLM's default engine limits, with the
capacity per GPU-hour of every candidate. A figure marked ~ is the mean-latency estimate of a
candidate the screen left out; the others are calibrated. The tables need a few hundred
calibrations, minutes of CPU each on a busy machine: a row whose reason begins "not
calibrated yet" was ranked by the estimate alone when this page was generated (`--cache`
keeps calibrations between runs; `--fill` computes the missing ones, most used models
first), so its choice may differ from the operator's, which always calibrates.

{auto_tables}

## Step model across sizes

A model size differs from another in the size of the matrices each layer reads, the number
of layers and the size of the cache, so the fixed costs follow those shapes: each weight
matrix a step reads costs {matrix_us:.1f} us of launch and ramp before it streams at
{bandwidth:.2f} of the bandwidth, and each layer {layer_us:.0f} us for its other kernels.
The committed GEMV measurements of three shapes take 5.3 us plus their bytes at 0.96 of the
bandwidth, to 0.1% (a 34 MB matrix reaches 0.55 of the datasheet bandwidth, a 134 MB one
0.81); whole 8B steps, which also read the KV cache and run smaller kernels, fit 0.88. A 1B
model's layer reads 121 MB in four matrices, an 8B's 436 MB, a 70B's on four GPUs 428 MB,
and an 8B on four GPUs 109 MB: one share of bandwidth for all of them made the small ones up
to a third too fast. The error of the step model against every committed measurement, with
the single-share model it replaced (`tests/unit/planner/test_step_errors.py` prints the same
table):

{step_errors}

**Per model size.** The goal (median error within 10%, worst within 25%, on every model
size, including sizes the fit did not use) against every committed measurement of a whole
model: the H200 runs above and the published single-request engine figures in
`docs/calibration/published-*.json` (inter-token latency as one decode step with the CPU
side, time to first token as an idle replica's prefill; `docs/calibration/README.md` says
how they were read). `tests/unit/planner/test_step_errors.py` prints the same table:

{step_errors_by_size}

**What is and is not measured.** The H200 figures are from one H200 (`docs/calibration/`).
Whole steps and prefills were measured for the Llama-3.1-8B shape only, the shape the
per-layer term ({layer_us:.0f} us) was fitted on, so the 8B rows show the fit, not a check.
The 70B-class rows are a check on a size the fit did not use: single-request decode steps of
Llama-3.3-70B (fp8) and Qwen2.5-72B (bf16) on two H100s, from NVIDIA NIM's and a vLLM
reference run's published tables, meet the goal; their times to first token do not, but those
also hold the HTTP server and tokenizer, and one of the two published sweeps is not monotone
in the prompt length. The matrix shapes cover the layers of 1B to 70B models (at their
tensor-parallel split), but no whole step of a 1B, 3B or 32B model is committed, and no
published figure for those sizes was found with its setup stated (GPU, engine, dtype,
concurrency, lengths), so the model's error on the smallest sizes, where per-layer fixed
costs weigh most, is not known. A 1B decode step at batch 1 is predicted at
{one_b_ms:.2f} ms of GPU time plus {step_ms:.1f} ms of CPU; an earlier run reported about
1.2 ms measured for it, but its raw figures are not in the repository.
`hack/calibrate/decode_step_bench.py` takes a model shape: running it for 1B and 32B on any
GPU, and committing the JSON, is what would settle the per-layer term.

## Plans for every catalog model and GPU type

bfloat16 weights and KV cache (float16 on the T4, which has no bfloat16), vLLM's default
engine limits, memory fraction 0.9, the smallest tensor-parallel degree that fits one
sequence of the context (models whose maximum context is shorter are planned at it).
*seqs* are concurrent sequences of the full context; *decode tok/s* is all of them decoding
together; *prefill tok/s* is one prompt of the full context on an idle replica; *$/h* is one
replica at the catalog price.

{tables}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--cache", type=Path, action="append",
                        help="JSON file of calibrations to reuse (repeatable; new ones go to "
                             "the first)")
    parser.add_argument("--fill", action="store_true", help="only fill the --cache")
    parser.add_argument("--cached-only", action="store_true",
                        help="calibrate nothing new: rank what is not cached by the estimate")
    parser.add_argument("--only-slo", choices=sorted(SLOS),
                        help="only this SLO's auto table (to fill a cache in parallel)")
    args = parser.parse_args()
    if args.fill:
        # Calibrate what the tables need, the most used models first; write nothing.
        first = ["llama-3.1-70b", "llama-3.1-8b", "qwen2.5-32b", "qwen2.5-14b", "qwen2.5-7b",
                 "qwen2.5-72b", "mixtral-8x7b", "mistral-7b", "llama-3.2-3b", "llama-3.2-1b"]
        auto_tables(CachedCalibration(args.cache), args.only_slo,
                    order=lambda m: first.index(m.key) if m.key in first else len(first))
        return 0
    text = render(CachedCalibration(args.cache, compute=not args.cached_only), args.only_slo)
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date; run hack/gen_capacity_doc.py", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text)
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
