"""The step model against every committed measurement, by what was measured.

`planner/step_errors.py` is pure: it takes the raw JSON of docs/calibration/ and returns,
per group (a model size's whole steps, or one GEMV shape), the model's relative error at
every point, and the same errors pooled per model size (`by_size`), which is how the goal is
stated (median within 10%, worst within 25% on every size). The test prints both;
hack/gen_capacity_doc.py puts them in docs/capacity.md.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from lmscale.planner import catalog, performance, plan

# What a group timed. A decode step and a prefill are the step model's two outputs; a
# published time to first token is a prefill plus the request's way through the server, so it
# is reported beside them, not pooled with them.
DECODE = "decode step"
PREFILL = "prefill"
TTFT = "time to first token"
KINDS = (DECODE, PREFILL, TTFT)

# The goal per model size (issue 17): median absolute error and worst error.
GOAL_MEDIAN = 0.10
GOAL_WORST = 0.25


def median_error(errors: Sequence[float]) -> float:
    """The median size of the errors, whatever their sign."""
    return statistics.median(abs(e) for e in errors)


def worst_error(errors: Sequence[float]) -> float:
    """The error farthest from the measurement, with its sign."""
    return max(errors, key=abs)


@dataclasses.dataclass(frozen=True)
class Group:
    """One kind of measurement and the model's error at each of its points."""

    name: str
    errors: tuple[float, ...]  # model / measured - 1
    excluded: tuple[tuple[str, float, str], ...] = ()  # (point, error, why left out)
    model: str = ""  # the catalog shape timed; empty for a single matrix
    kind: str = ""  # one of KINDS; empty for a single matrix

    @property
    def median(self) -> float:
        return median_error(self.errors)

    @property
    def worst(self) -> float:
        return worst_error(self.errors)


def _model(step: Mapping[str, Any]) -> str:
    """The catalog shape a decode_step_bench.py run timed (8B before it said so)."""
    return str(step.get("model") or "llama-3.1-8b")


def _perf(step: Mapping[str, Any],
          efficiency: performance.Efficiency) -> performance.ReplicaPerformance:
    return performance.replica_performance(
        plan.plan_replica(_model(step), "nvidia-h200", context=4096), efficiency=efficiency)


def _decode(step: Mapping[str, Any], efficiency: performance.Efficiency) -> Group:
    perf = _perf(step, efficiency)
    errors, excluded = [], []
    for row in step.get("decode", []):
        if "seconds" not in row:
            continue
        # The benchmark runs the step's kernels in one CUDA graph: no CPU side.
        model = perf.decode_step_seconds(row["batch"], row["context"]) - efficiency.step_overhead_s
        error = model / row["seconds"] - 1
        if row["batch"] == 1 and row["context"] > 4096:
            excluded.append((f"batch 1, context {row['context']}", error,
                             "torch's attention has no split-KV path for one sequence"))
        else:
            errors.append(error)
    return Group(f"{_model(step)} decode steps", tuple(errors), tuple(excluded),
                 model=_model(step), kind=DECODE)


def _prefill(step: Mapping[str, Any], efficiency: performance.Efficiency) -> Group:
    perf = _perf(step, efficiency)
    errors = [perf.prefill_seconds(row["tokens"]) / row["seconds"] - 1
              for row in step.get("prefill", []) if "seconds" in row]
    return Group(f"{_model(step)} prefills", tuple(errors), model=_model(step), kind=PREFILL)


def _gemv(micro: Mapping[str, Any], efficiency: performance.Efficiency) -> list[Group]:
    """Decode-shaped GEMVs (M <= 16): the matrix sizes of different models' layers."""
    gpu = catalog.gpu("nvidia-h200")
    bandwidth = gpu.bandwidth_bytes_per_second * efficiency.bandwidth
    shapes: dict[tuple[int, int], list[float]] = {}
    for row in micro.get("decode_gemm", []):
        if row["m"] > 16:
            continue
        measured = row["seconds"] / row["matrices"]
        model = efficiency.matrix_overhead_s + row["k"] * row["n"] * 2 / bandwidth
        shapes.setdefault((row["k"], row["n"]), []).append(model / measured - 1)
    return [Group(f"GEMV {k} x {n} ({k * n * 2 / 1e6:.0f} MB), batch 1-16", tuple(errors))
            for (k, n), errors in sorted(shapes.items(), key=lambda item: item[0][0] * item[0][1])]


def groups(micro: Mapping[str, Any], steps: Sequence[Mapping[str, Any]],
           efficiency: performance.Efficiency = performance.DEFAULT_EFFICIENCY) -> list[Group]:
    """Every committed H200 measurement, grouped, with the step model's error: the GEMV
    shapes, then each timed model shape's decode steps and prefills."""
    found = _gemv(micro, efficiency)
    for step in steps:
        found += [_decode(step, efficiency), _prefill(step, efficiency)]
    return [group for group in found if group.errors]


# A published run's memory setting is rarely printed; engines are often started with more than
# the planner's default share, so the points are planned at the largest share vLLM accepts.
_PUBLISHED_MEMORY_FRACTION = 0.95


def _published_perf(point: Mapping[str, Any],
                    efficiency: performance.Efficiency) -> performance.ReplicaPerformance:
    context = int(point["input_tokens"]) + int(point["output_tokens"])
    replica = plan.plan_replica(
        point["model"], point["gpu"], dtype=point["dtype"], gpus_per_replica=int(point["tp"]),
        context=context, batch=max(1, int(point["concurrency"])),
        memory_fraction=_PUBLISHED_MEMORY_FRACTION)
    return performance.replica_performance(replica, efficiency=efficiency)


def published(data: Mapping[str, Any],
              efficiency: performance.Efficiency = performance.DEFAULT_EFFICIENCY) -> list[Group]:
    """Published engine measurements (docs/calibration/published-*.json), per model shape:
    inter-token latency against one decode step at the mean context of the output (the
    engine's CPU side included), time to first token against an idle replica's prefill."""
    decode: dict[str, list[float]] = {}
    prefill: dict[str, list[float]] = {}
    shapes: list[str] = []  # in the file's order
    for point in data.get("points", []):
        key = f"{point['model']} on {point['tp']}x {point['gpu']} ({point['dtype']})"
        if key not in shapes:
            shapes.append(key)
        perf = _published_perf(point, efficiency)
        batch = max(1, int(point["concurrency"]))
        if "itl_seconds" in point:
            context = int(point["input_tokens"]) + int(point["output_tokens"]) // 2
            model = perf.decode_step_seconds(batch, context)
            decode.setdefault(key, []).append(model / point["itl_seconds"] - 1)
        if "ttft_seconds" in point and batch == 1:
            model = perf.prefill_seconds(int(point["input_tokens"]))
            prefill.setdefault(key, []).append(model / point["ttft_seconds"] - 1)
    found = []
    for key in shapes:
        name = key.split(" on ", 1)[0]
        if key in decode:
            found.append(Group(f"published {key} ITL", tuple(decode[key]),
                               model=name, kind=DECODE))
        if key in prefill:
            found.append(Group(f"published {key} TTFT", tuple(prefill[key]),
                               model=name, kind=TTFT))
    return found


# Size classes by parameter count (upper bound, label): the catalog's models fall one size
# to a class, and the two 70B-class shapes (Llama 70.6B, Qwen 72.7B) share one.
_SIZE_CLASSES = ((2.5e9, "1B"), (5e9, "3B"), (10e9, "7B-8B"), (20e9, "14B"),
                 (50e9, "32B-47B"), (100e9, "70B-72B"), (float("inf"), "405B"))
SIZES = tuple(label for _, label in _SIZE_CLASSES)


def size_class(model: str) -> str:
    """The size class of a catalog model, by its published parameter count."""
    architecture = catalog.model(model)
    parameters = architecture.published_parameters
    if parameters is None:
        raise ValueError(f"model {model!r} has no published parameter count")
    return next(label for bound, label in _SIZE_CLASSES if parameters < bound)


@dataclasses.dataclass(frozen=True)
class SizeSummary:
    """Every error of one kind on one model size, pooled across the groups that timed it."""

    size: str
    kind: str
    errors: tuple[float, ...]
    sources: tuple[str, ...]  # the groups' names

    @property
    def median(self) -> float:
        return median_error(self.errors)

    @property
    def worst(self) -> float:
        return worst_error(self.errors)

    @property
    def meets_goal(self) -> bool:
        return self.median <= GOAL_MEDIAN and abs(self.worst) <= GOAL_WORST


def by_size(found: Sequence[Group]) -> list[SizeSummary]:
    """Pool the groups that timed a whole model (not a single matrix) per size class and kind,
    smallest size first, decode steps before prefills before times to first token."""
    pooled: dict[tuple[str, str], tuple[list[float], list[str]]] = {}
    for group in found:
        if not group.model or not group.errors:
            continue
        errors, sources = pooled.setdefault((size_class(group.model), group.kind), ([], []))
        errors.extend(group.errors)
        sources.append(group.name)
    order = sorted(pooled, key=lambda key: (SIZES.index(key[0]), KINDS.index(key[1])))
    return [SizeSummary(size, kind, tuple(pooled[size, kind][0]), tuple(pooled[size, kind][1]))
            for size, kind in order]


def unmeasured_sizes(summaries: Sequence[SizeSummary]) -> list[str]:
    """The size classes of catalog models that no committed measurement covers."""
    covered = {summary.size for summary in summaries}
    present = {size_class(m.key) for m in catalog.models() if m.published_parameters}
    return [size for size in SIZES if size in present and size not in covered]
