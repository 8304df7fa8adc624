"""`lmscale plan`: what hardware a model needs, from flags or a LanguageModelDeployment file.

With `--gpu` (or `spec.accelerator.type`) it prints one replica's plan; without a GPU but
with `--rate` and `--slo-ttft-ms` it ranks every GPU type and tensor-parallel degree by the
cost of serving that load (`candidates`, cheapest first); without either it chooses the GPU
type too. `--gpus-per-replica auto` (the default) chooses the degree the operator would: the
lowest cost per request at the SLO and token mix (flags, else the file's `spec.slo`, else the
resource's defaults), calibrated as the autoscaler calibrates. The context defaults, as in the
operator, to the file's `maxContextLength`, else the model's maximum. Exits 1 when the model
does not fit, 2 on bad input. `--output json|yaml` prints the planner's dictionaries.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from lmscale.api.scaling import Scaling
from lmscale.api.spec import Slo
from lmscale.planner import auto, catalog, performance, plan, recommend, slo, storage

CATALOG_DIR_ENV = "LMSCALE_CATALOG_DIR"
# The resource's defaults, so a plan from flags is the plan the operator makes.
SLO_DEFAULTS = Slo()
TOLERANCE = Scaling.model_fields["tolerance"].default
GIB = float(catalog.GIB)


class PlanInputError(ValueError):
    """A flag or a LanguageModelDeployment file the planner cannot use."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `plan` subcommand."""
    parser = subparsers.add_parser(
        "plan",
        help="what GPUs a model needs, what one replica serves, and what it costs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_argument_group("what to plan")
    source.add_argument("-f", "--file", type=Path, metavar="LMD.yaml",
                        help="a LanguageModelDeployment; flags override its fields")
    source.add_argument("--model", help="model catalog key, e.g. llama-3.1-8b")
    source.add_argument("--gpu", help="GPU catalog key, e.g. nvidia-h100-80gb")
    source.add_argument("--dtype", help="weight dtype: bfloat16 (default), float16, fp8, int4")
    source.add_argument("--kv-cache-dtype", help="KV-cache dtype (default: the 16-bit type)")
    source.add_argument("--context", type=int,
                        help="tokens per sequence (max model length); default the file's "
                             "maxContextLength, else the model's maximum (as the operator)")
    source.add_argument("--batch", type=int,
                        help="decode batch for the decode figures (default: the most that fit)")
    source.add_argument("--gpus-per-replica", metavar="N|auto",
                        help="tensor-parallel degree (default auto: the cheapest per request "
                             "at the SLO, as the operator chooses)")
    source.add_argument("--list", action="store_true", help="list the catalog keys and exit")

    engine = parser.add_argument_group("engine")
    engine.add_argument("--memory-fraction", type=float,
                        default=0.9, help="vLLM --gpu-memory-utilization (default 0.9)")
    engine.add_argument("--max-num-seqs", type=int, help="engine's concurrent sequence cap")
    engine.add_argument("--max-num-batched-tokens", type=int, help="engine's token budget")

    load = parser.add_argument_group("load and SLO (for candidates)")
    load.add_argument("--rate", type=float, help="requests per second")
    load.add_argument("--prompt-tokens", type=float,
                      help="mean prompt tokens (default 1024, or the file's slo)")
    load.add_argument("--output-tokens", type=float,
                      help="mean output tokens (default 256, or the file's slo)")
    load.add_argument("--trace", type=Path,
                      help="a request trace (Azure CSV or Mooncake JSONL) for rate and mix")
    load.add_argument("--slo-ttft-ms", type=float, help="95th percentile time to first token")
    load.add_argument("--slo-tpot-ms", type=float, help="95th percentile time per output token")

    money = parser.add_argument_group("prices, storage and catalogs")
    money.add_argument("--price", action="append", default=[], metavar="GPU=USD",
                       help="hourly price per GPU, overriding the catalog (repeatable)")
    money.add_argument("--catalog", action="append", default=[], type=Path, metavar="FILE",
                       help=f"extra catalog entries (repeatable; also ${CATALOG_DIR_ENV})")
    money.add_argument("--source", help="weights URI: hf://, s3://, gs:// or pvc:// (default hf)")
    money.add_argument("--load-bandwidth-mbps", type=float,
                       help="weights read bandwidth in MB/s (default by source)")
    parser.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        known = load_catalog(args.catalog, os.environ.get(CATALOG_DIR_ENV), args.price)
        if args.list:
            _emit(args.output, _listing(known), _listing_table(known))
            return 0
        request = Request.from_args(args, known)
        if request.gpu is None and request.rate is not None and request.ttft_ms is not None:
            result = _recommend(request, known)
            _emit(args.output, result.to_dict(), _candidates_table(result))
            return 0 if result.candidates else 1
        elif request.gpu is None:
            if request.rate is not None:
                raise PlanInputError("ranking GPU types needs both --rate and --slo-ttft-ms "
                                     "(or pass --gpu)")
            if request.gpus_per_replica is not None:
                plans = [_plan(request, known, [gpu]) for gpu in known.gpus.values()]
                _emit(args.output, {"plans": [p.to_dict() for p in plans]}, _plans_table(plans))
                return 0 if any(p.fits for p in plans) else 1
            capacity = _plan(request, known, list(known.gpus.values()))
            data = capacity.to_dict()
            data.update(_slo_section(capacity, request))
            _emit(args.output, data, _plan_table(capacity, data))
            return 0 if capacity.fits else 1
        else:
            capacity = _plan(request, known, [known.gpu(request.gpu)])
            data = capacity.to_dict()
            data.update(_slo_section(capacity, request))
            _emit(args.output, data, _plan_table(capacity, data))
            return 0 if capacity.fits else 1
    except BrokenPipeError:
        raise  # the CLI's entry point handles a closed pipe
    except (ValueError, OSError, yaml.YAMLError) as error:
        print(f"lmscale plan: error: {error}", file=sys.stderr)
        return 2
    return 0


# Inputs


def load_catalog(files: Sequence[Path], directory: str | None,
                 prices: Sequence[str]) -> catalog.Catalog:
    """The packaged catalog, extended by the user's files and price overrides."""
    known = catalog.default()
    paths = list(files)
    if directory:
        paths = sorted(Path(directory).glob("*.yaml")) + sorted(Path(directory).glob("*.yml")) \
            + paths
    for path in paths:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, Mapping):
            raise PlanInputError(f"{path}: a catalog file is a mapping of models and gpus")
        try:
            known = known.extended(data)
        except ValueError as error:
            raise PlanInputError(f"{path}: {error}") from None
    overrides: dict[str, Any] = {}
    for item in prices:
        key, _, value = item.partition("=")
        try:
            price = float(value)
        except ValueError:
            raise PlanInputError(f"--price {item!r}: expected GPU=USD, e.g. "
                                 "nvidia-h100-80gb=2.10") from None
        known.gpu(key)  # unknown keys name the closest ones
        overrides[key] = {"price_per_hour": price}
    return known.extended({"gpus": overrides}) if overrides else known


SHAPE_FIELDS = {
    "layers": "layers", "hiddenSize": "hidden_size", "attentionHeads": "attention_heads",
    "kvHeads": "kv_heads", "headDim": "head_dim", "ffnSize": "intermediate_size",
    "vocabSize": "vocab_size", "tiedEmbeddings": "tied_embeddings",
    "parameters": "published_parameters", "maxContextLength": "max_context",
}


def _dig(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def model_from_lmd(spec: Mapping[str, Any], known: catalog.Catalog) -> catalog.ModelArchitecture:
    """spec.model.architecture (a catalog key) or spec.model.shape (inline)."""
    key = _dig(spec, "model", "architecture")
    if key:
        return known.model(str(key))
    shape = _dig(spec, "model", "shape")
    if not isinstance(shape, Mapping):
        raise PlanInputError("spec.model needs an architecture (catalog key) or a shape")
    unknown = set(shape) - set(SHAPE_FIELDS)
    if unknown:
        raise PlanInputError(f"spec.model.shape: unknown fields {sorted(unknown)}")
    entry = {SHAPE_FIELDS[name]: value for name, value in shape.items()}
    entry.setdefault("head_dim", int(entry["hidden_size"]) // int(entry["attention_heads"]))
    name = str(_dig(spec, "model", "name") or "custom")
    return catalog.model_from_dict(name, entry)


class Request:
    """Everything `lmscale plan` was asked, flags over file."""

    def __init__(self, **fields: Any) -> None:
        self.model: catalog.ModelArchitecture = fields["model"]
        self.gpu: str | None = fields.get("gpu")
        self.dtype: str = fields.get("dtype") or "bfloat16"
        self.kv_cache_dtype: str | None = fields.get("kv_cache_dtype")
        self.context: int = fields["context"]
        self.batch: int | None = fields.get("batch")
        self.gpus_per_replica: int | None = fields.get("gpus_per_replica")
        self.memory_fraction: float = fields.get("memory_fraction", 0.9)
        self.max_num_seqs: int | None = fields.get("max_num_seqs")
        self.max_num_batched_tokens: int | None = fields.get("max_num_batched_tokens")
        self.rate: float | None = fields.get("rate")
        self.prompt_tokens: float = fields.get("prompt_tokens") or SLO_DEFAULTS.mean_prompt_tokens
        self.output_tokens: float = fields.get("output_tokens") or SLO_DEFAULTS.mean_output_tokens
        self.ttft_ms: float | None = fields.get("ttft_ms")
        self.tpot_ms: float | None = fields.get("tpot_ms")
        self.source: str = fields.get("source") or "hf"
        self.load_bandwidth: float | None = fields.get("load_bandwidth")
        self.tolerance: float = fields.get("tolerance") or TOLERANCE

    def workload(self) -> auto.Workload:
        """What auto chooses the degree for: the resource's SLO defaults where unset."""
        return auto.Workload(
            ttft_p95_s=(self.ttft_ms or SLO_DEFAULTS.ttft_p95_ms) / 1e3,
            tpot_p95_s=(self.tpot_ms or SLO_DEFAULTS.tpot_p95_ms) / 1e3,
            mean_prompt_tokens=float(self.prompt_tokens),
            mean_output_tokens=float(self.output_tokens),
            tolerance=self.tolerance,
        )

    @classmethod
    def from_args(cls, args: argparse.Namespace, known: catalog.Catalog) -> Request:
        spec: Mapping[str, Any] = {}
        if args.file:
            document = yaml.safe_load(args.file.read_text(encoding="utf-8"))
            spec = _dig(document, "spec") or {}
            if not isinstance(spec, Mapping) or not spec:
                raise PlanInputError(f"{args.file}: no spec; expected a LanguageModelDeployment")
        if args.model:
            model = known.model(args.model)
        elif spec:
            model = model_from_lmd(spec, known)
        else:
            raise PlanInputError("name a model: --model KEY or -f LMD.yaml (--list shows keys)")
        file_context = _dig(spec, "model", "maxContextLength")
        context = args.context or file_context or model.max_context
        fields: dict[str, Any] = dict(
            model=model,
            gpu=args.gpu or _dig(spec, "accelerator", "type"),
            dtype=args.dtype or _dig(spec, "model", "dtype"),
            kv_cache_dtype=args.kv_cache_dtype,
            context=int(context),
            batch=args.batch,
            gpus_per_replica=_degree(args.gpus_per_replica
                                     or _dig(spec, "accelerator", "gpusPerReplica")),
            memory_fraction=args.memory_fraction,
            max_num_seqs=args.max_num_seqs,
            max_num_batched_tokens=args.max_num_batched_tokens,
            rate=args.rate,
            prompt_tokens=args.prompt_tokens or _dig(spec, "slo", "meanPromptTokens"),
            output_tokens=args.output_tokens or _dig(spec, "slo", "meanOutputTokens"),
            ttft_ms=args.slo_ttft_ms or _dig(spec, "slo", "ttftP95Ms"),
            tpot_ms=args.slo_tpot_ms or _dig(spec, "slo", "tpotP95Ms"),
            source=storage.source_scheme(args.source or _dig(spec, "model", "source", "uri")),
            load_bandwidth=args.load_bandwidth_mbps * 1e6 if args.load_bandwidth_mbps else None,
            tolerance=_dig(spec, "scaling", "tolerance"),
        )
        if args.trace:
            load = _trace_load(args.trace)
            fields["rate"] = args.rate or load.rate_rps
            fields["prompt_tokens"] = args.prompt_tokens or load.mean_prompt_tokens
            fields["output_tokens"] = args.output_tokens or load.mean_output_tokens
        return cls(**fields)


def _degree(value: object) -> int | None:
    if value is None or str(value) == "auto":
        return None
    try:
        degree = int(str(value))
    except ValueError:
        raise PlanInputError(f"gpus per replica must be a number or auto, not {value!r}") from None
    if degree < 1:
        raise PlanInputError("gpus per replica must be at least 1")
    return degree


def _trace_load(path: Path) -> recommend.Load:
    """Rate and token mix of a trace, read with the simulator's trace readers."""
    from lmscale.sim import trace  # the edge: file reading lives in the simulator's reader

    with path.open(encoding="utf-8") as lines:
        requests = trace.parse(lines, trace.guess_format(path.name), source=str(path))
    return recommend.Load.from_requests(requests)


# Planning


def _plan(request: Request, known: catalog.Catalog,
          gpus: Sequence[catalog.GpuType]) -> plan.CapacityPlan:
    """The request's degree on one GPU type, or auto's choice among `gpus`."""
    options: dict[str, Any] = dict(
        dtype=request.dtype, context=request.context, batch=request.batch,
        kv_cache_dtype=request.kv_cache_dtype, memory_fraction=request.memory_fraction,
        max_num_seqs=request.max_num_seqs, max_num_batched_tokens=request.max_num_batched_tokens,
        source=request.source, load_bandwidth_bytes_per_second=request.load_bandwidth,
    )
    if request.gpus_per_replica is None:
        return auto.plan_auto(request.model, gpus, request.workload(), known=known, **options)
    return plan.plan_replica(request.model, gpus[0], gpus_per_replica=request.gpus_per_replica,
                             known=known, **options)


def _recommend(request: Request, known: catalog.Catalog) -> recommend.Recommendation:
    assert request.rate is not None and request.ttft_ms is not None
    return recommend.recommend(
        request.model,
        load=recommend.Load(request.rate, request.prompt_tokens, request.output_tokens),
        objective=recommend.Objective(
            ttft_p95_s=request.ttft_ms / 1e3,
            tpot_p95_s=request.tpot_ms / 1e3 if request.tpot_ms else math.inf,
        ),
        context=request.context, dtype=request.dtype, known=known,
        memory_fraction=request.memory_fraction, kv_cache_dtype=request.kv_cache_dtype,
        max_num_seqs=request.max_num_seqs, max_num_batched_tokens=request.max_num_batched_tokens,
        source=request.source, load_bandwidth_bytes_per_second=request.load_bandwidth,
    )


def _slo_section(capacity: plan.CapacityPlan, request: Request) -> dict[str, Any]:
    """With an SLO: the in-flight requests one replica carries, and replicas for a rate."""
    if request.ttft_ms is None or not capacity.fits:
        return {}
    perf = performance.replica_performance(capacity)
    mix: dict[str, float] = dict(
        ttft_p95_s=request.ttft_ms / 1e3,
        tpot_p95_s=request.tpot_ms / 1e3 if request.tpot_ms else math.inf,
        mean_prompt_tokens=request.prompt_tokens, mean_output_tokens=request.output_tokens)
    target = slo.target_concurrency(perf, **mix)
    latency = slo.latency_at(perf, concurrency=int(target),
                             mean_prompt_tokens=request.prompt_tokens,
                             mean_output_tokens=request.output_tokens)
    section: dict[str, Any] = {
        "target_concurrency": target,
        "slo_problem": slo.slo_problem(perf, **mix),
        "ttft_seconds": latency.ttft_s,
        "tpot_seconds": latency.tpot_s,
        "requests_per_second_per_replica": latency.requests_per_second,
    }
    if request.rate is not None:
        replicas = slo.replicas_for_load(perf, rate_rps=request.rate, **mix)
        section["replicas"] = replicas
        section["fleet_cost_per_hour"] = replicas * capacity.cost_per_hour
    return section


# Output


def _emit(output: str, data: Mapping[str, Any], table: str) -> None:
    if output == "json":
        print(json.dumps(_finite(data), indent=2))
    elif output == "yaml":
        print(yaml.safe_dump(_finite(data), sort_keys=False), end="")
    else:
        print(table)


def _finite(value: Any) -> Any:
    """JSON has no infinity: an unbounded figure prints as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def _gib(value: float | None) -> str:
    return "-" if value is None else f"{value / GIB:,.1f} GiB"


def _ms(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value * 1e3:,.1f} ms"


def _rate(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:,.0f} {unit}"


def _plan_table(capacity: plan.CapacityPlan, data: Mapping[str, Any]) -> str:
    mem = capacity.memory
    rows = [
        ("model", f"{capacity.model.key} ({capacity.dtype}, KV {capacity.kv_cache_dtype})"),
        ("gpu", f"{capacity.gpu.key} (node label {capacity.gpu.product_label})"),
        ("fits", "yes" if capacity.fits else f"NO: {capacity.reason}"),
        ("gpus per replica", str(capacity.gpus_per_replica)),
        *([("why", capacity.degree_reason)] if capacity.degree_reason else []),
        ("weights", f"{_gib(capacity.weights_bytes)} ({_gib(mem.weights)} per GPU)"),
        ("KV cache per token", f"{capacity.kv_bytes_per_token:,} bytes"),
        ("memory per GPU", f"{_gib(mem.usable)} usable of {_gib(mem.total)}: activations "
                           f"{_gib(mem.activations)}, non-torch {_gib(mem.non_torch)}, "
                           f"KV cache {_gib(max(0, mem.kv_cache))}"),
        ("KV capacity", f"{capacity.kv_capacity_tokens:,} tokens"),
        ("concurrent sequences", f"{capacity.max_concurrent_sequences:,} of "
                                 f"{capacity.context:,} tokens (engine cap "
                                 f"{capacity.max_num_seqs:,})"),
        (f"decode step (batch {capacity.batch})", _ms(capacity.decode_step_seconds)),
        ("decode throughput", _rate(capacity.decode_tokens_per_second, "tokens/s")),
        (f"prefill ({capacity.context:,} tokens)", _ms(capacity.prefill_seconds)),
        ("prefill throughput", _rate(capacity.prefill_tokens_per_second, "tokens/s")),
        ("cost", f"${capacity.cost_per_hour:,.2f}/h per replica "
                 f"(${capacity.gpu.price_per_hour:,.2f} per GPU-hour)"),
        ("weights to fetch", f"{_gib(capacity.storage.download_bytes)} from "
                             f"{capacity.storage.source}; volume {capacity.storage.pvc_size}"),
        ("cold start", f"{capacity.cold_start_seconds:,.0f} s (load "
                       f"{capacity.storage.load_seconds:,.0f} s + engine "
                       f"{capacity.storage.engine_start_seconds:,.0f} s)"),
    ]
    if "target_concurrency" in data:
        rows.append(("in flight per replica at SLO", f"{data['target_concurrency']:,.0f}"
                     + (f" ({data['slo_problem']})" if data.get("slo_problem") else "")))
        rows.append(("TTFT / TPOT there", f"{_ms(data['ttft_seconds'])} / "
                                          f"{_ms(data['tpot_seconds'])}"))
    if "replicas" in data:
        rows.append(("replicas for the rate", f"{data['replicas']} "
                     f"(${data['fleet_cost_per_hour']:,.2f}/h)"))
    rows += [("note", note) for note in capacity.notes]
    width = max(len(name) for name, _ in rows)
    table = "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
    return table + _degree_table(capacity)


def _degree_table(capacity: plan.CapacityPlan) -> str:
    """Every (GPU type, degree) auto weighed, with its capacity per GPU-hour."""
    if not capacity.degree_candidates:
        return ""
    header = ("gpu", "gpus", "req/s per replica", "req per GPU-hour", "$ per 1000 req", "how")
    rows = [(c["gpu"], str(c["gpus_per_replica"]), f"{c['requests_per_second_per_replica']:.2f}",
             f"{c['requests_per_gpu_hour']:,.0f}",
             "-" if c["cost_per_1000_requests"] is None else f"{c['cost_per_1000_requests']:.3f}",
             c["problem"] or ("calibrated" if c["calibrated"] else "estimated"))
            for c in capacity.degree_candidates]
    return "\n\ncandidates weighed by gpusPerReplica auto:\n" + _grid(header, rows)


def _grid(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    lines = ["  ".join(f"{cell:<{w}}" for cell, w in zip(header, widths, strict=True))]
    lines += ["  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths, strict=True))
              for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def _plans_table(plans: Sequence[plan.CapacityPlan]) -> str:
    header = ("gpu", "gpus", "fits", "KV tokens", "seqs", "decode step", "tokens/s", "$/h")
    rows = [(p.gpu.key, str(p.gpus_per_replica), "yes" if p.fits else "no",
             f"{p.kv_capacity_tokens:,}", f"{p.max_concurrent_sequences:,}",
             _ms(p.decode_step_seconds), _rate(p.decode_tokens_per_second, ""),
             f"{p.cost_per_hour:,.2f}") for p in plans]
    reasons = [f"{p.gpu.key}: {p.reason}" for p in plans if not p.fits]
    return _grid(header, rows) + ("\n\n" + "\n".join(reasons) if reasons else "")


def _candidates_table(result: recommend.Recommendation) -> str:
    load = result.load
    lines = [f"{result.model} at {load.rate_rps:g} req/s, {load.mean_prompt_tokens:.0f} prompt + "
             f"{load.mean_output_tokens:.0f} output tokens, context {result.context}", ""]
    header = ("#", "gpu", "gpus", "replicas", "$/h", "in flight", "TTFT", "TPOT")
    rows = [(str(i + 1), c.plan.gpu.key, str(c.plan.gpus_per_replica), str(c.replicas),
             f"{c.cost_per_hour:,.2f}", f"{c.target_concurrency:,.0f}", _ms(c.latency.ttft_s),
             _ms(c.latency.tpot_s)) for i, c in enumerate(result.candidates)]
    lines.append(_grid(header, rows) if rows else "no GPU type meets the SLO")
    if result.candidates:
        lines += ["", "why the others lost:"]
        lines += [f"  {c.plan.gpu.key} x{c.plan.gpus_per_replica}: {c.reason}"
                  for c in result.candidates[1:]]
    lines += [f"  {r.gpu} x{r.gpus_per_replica}: {r.reason}" for r in result.rejected]
    return "\n".join(lines)


def _listing(known: catalog.Catalog) -> dict[str, Any]:
    return {
        "models": {key: {"hf_id": m.hf_id, "max_context": m.max_context}
                   for key, m in known.models.items()},
        "gpus": {key: {"product_label": g.product_label, "memory_mib": g.memory_mib,
                       "price_per_hour": g.price_per_hour} for key, g in known.gpus.items()},
    }


def _listing_table(known: catalog.Catalog) -> str:
    models = _grid(("model", "hf id", "max context"),
                   [(k, m.hf_id, f"{m.max_context:,}") for k, m in known.models.items()])
    gpus = _grid(("gpu", "node label", "memory", "$/GPU-hour"),
                 [(k, g.product_label, f"{g.memory_mib:,} MiB", f"{g.price_per_hour:.2f}")
                  for k, g in known.gpus.items()])
    return models + "\n\n" + gpus
