"""`lmscale simulate`: replay a request trace through a scaling policy, faster than real time.

The trace's requests run on simulated replicas of `--model` on `--gpu` (the planner's step
model, KV cache and cold start), balanced as a Service would, with metrics a scrape
interval late and the policy deciding every cycle. `lmscale` is the operator's own policy;
`static:N`, `static-peak`, `hpa-gpu-util[:TARGET]`, `keda-queue[:THRESHOLD]` and `oracle`
are what it is measured against.

Several `--gpu TYPE[:MAX_REPLICAS]` make a mixed fleet, the first preferred and the others
its fallbacks in order, each replica on its own type's model; `:MAX_REPLICAS` is how many
replicas that type's nodes hold (replicas beyond it stay unschedulable, as on a cluster
that ran out). One `--gpu` with a limit runs any policy on that scarce type alone.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lmscale.sim import policies, scenario, trace
from lmscale.sim.balancer import BalancerKind
from lmscale.sim.request import Request
from lmscale.sim.results import windows
from lmscale.sim.simulator import SimConfig, SimRun

SUMMARY_ROWS = (
    ("requests", "requests", "{:,}"),
    ("completed", "completed", "{:,}"),
    ("slo_attainment", "SLO attainment", "{:.2%}"),
    ("ttft_p50_ms", "TTFT p50", "{:,.0f} ms"),
    ("ttft_p95_ms", "TTFT p95", "{:,.0f} ms"),
    ("ttft_p99_ms", "TTFT p99", "{:,.0f} ms"),
    ("tpot_p95_ms", "TPOT p95", "{:,.1f} ms"),
    ("gpu_hours", "GPU-hours", "{:,.2f}"),
    ("cost", "cost", "${:,.2f}"),
    ("max_replicas", "max replicas", "{}"),
    ("scale_events", "scale events", "{}"),
    ("trace_seconds", "trace", "{:,.0f} s"),
    ("wall_seconds", "wall time", "{:,.2f} s"),
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `simulate` subcommand."""
    parser = subparsers.add_parser(
        "simulate",
        help="replay a request trace through a scaling policy on simulated GPUs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--trace",
        required=True,
        type=Path,
        metavar="FILE",
        help="Azure CSV (TIMESTAMP,ContextTokens,GeneratedTokens) or Mooncake JSONL",
    )
    parser.add_argument(
        "--format",
        choices=[f.value for f in trace.TraceFormat],
        help="trace format (default: from the file name)",
    )
    parser.add_argument("--model", default="qwen2.5-14b", help="model catalog key")
    parser.add_argument(
        "--gpu",
        action="append",
        type=gpu_arg,
        metavar="TYPE[:MAX_REPLICAS]",
        help="GPU catalog key, with how many replicas its nodes hold (default nvidia-l40s, "
        "unlimited); repeat for fallback types, in order (lmscale only)",
    )
    parser.add_argument(
        "--fallback-after-seconds",
        type=float,
        default=60.0,
        help="how long a type's pods stay unschedulable before its capacity goes to the "
        "next type (default 60)",
    )
    parser.add_argument(
        "--policy",
        default="lmscale",
        help="lmscale | static:N | static-peak | hpa-gpu-util[:0.7] | "
        "keda-queue[:5] | oracle (default lmscale)",
    )
    parser.add_argument(
        "--slo-ttft-ms",
        type=float,
        default=1000.0,
        help="time to first token objective (default 1000)",
    )
    parser.add_argument(
        "--slo-tpot-ms",
        type=float,
        default=100.0,
        help="time per output token objective (default 100)",
    )
    parser.add_argument("--min-replicas", type=int, default=1)
    parser.add_argument("--max-replicas", type=int, default=32)
    parser.add_argument(
        "--rate-scale",
        type=float,
        default=1.0,
        help="multiply the request rate, keeping duration and burst shape",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for --rate-scale")
    parser.add_argument(
        "--balancer",
        choices=[b.value for b in BalancerKind],
        default=BalancerKind.LEAST_REQUESTS.value,
    )
    parser.add_argument(
        "--cold-start-seconds",
        type=float,
        help="replica start-up time (default: the planner's estimate)",
    )
    parser.add_argument(
        "--scrape-interval",
        type=float,
        default=15.0,
        help="Prometheus scrape interval: the metric delay (default 15 s)",
    )
    parser.add_argument(
        "--target-per-replica",
        type=float,
        help="in-flight requests per replica for lmscale (default: calibrated on the "
        "engine model for the SLO and the trace's token lengths)",
    )
    parser.add_argument(
        "--attainment-goal",
        type=float,
        default=0.99,
        help="SLO attainment static-peak and oracle search for (default 0.99)",
    )
    parser.add_argument("--output", choices=["text", "json"], default="text")
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="write load, replicas and TTFT p95 over time to a PNG (needs lmscale[sim])",
    )
    parser.set_defaults(func=run)


SIM_EXTRA_HINT = "install the simulator's extras: pip install 'lmscale[sim]'"


def missing_sim_extra(module: str) -> str | None:
    """Why `module` (from the `lmscale[sim]` extra) cannot be used, or None when it can."""
    try:
        importlib.import_module(module)
    except ImportError as error:
        return f"{module} is not installed ({error}); {SIM_EXTRA_HINT}"
    return None


def gpu_arg(text: str) -> tuple[str, int | None]:
    """`nvidia-h100-80gb:8` -> `('nvidia-h100-80gb', 8)`; no limit -> None."""
    name, sep, limit = text.strip().partition(":")
    if not name:
        raise argparse.ArgumentTypeError(f"expected TYPE[:MAX_REPLICAS], got {text!r}")
    if not sep:
        return name, None
    if not limit.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: MAX_REPLICAS must be a whole number >= 0")
    return name, int(limit)


def run(args: argparse.Namespace) -> int:
    """Load the trace, replay it, print the figures (and plot them)."""
    if args.plot and (problem := missing_sim_extra("matplotlib")):
        # Said before the replay, not after minutes of simulation.
        print(f"lmscale simulate: --plot needs matplotlib: {problem}", file=sys.stderr)
        return 2
    gpus = args.gpu or [("nvidia-l40s", None)]
    (gpu, available), fallbacks = gpus[0], gpus[1:]
    try:
        requests = load_trace(args.trace, args.format, rate=args.rate_scale, seed=args.seed)
        if fallbacks and policies.parse(args.policy)[0] != "lmscale":
            raise ValueError(f"{args.policy} runs on one GPU type; several --gpu are for lmscale")
        policies.parse(args.policy)
        config = SimConfig(
            cold_start_seconds=0.0,
            scrape_interval_seconds=args.scrape_interval,
            balancer=BalancerKind(args.balancer),
        )
        setup = scenario.build(
            requests,
            model=args.model,
            gpu=gpu,
            ttft_seconds=args.slo_ttft_ms / 1000 if args.slo_ttft_ms else None,
            tpot_seconds=args.slo_tpot_ms / 1000 if args.slo_tpot_ms else None,
            min_replicas=args.min_replicas,
            max_replicas=args.max_replicas,
            config=config,
            cold_start_seconds=args.cold_start_seconds,
            attainment_goal=args.attainment_goal,
            target_per_replica=args.target_per_replica,
            available=available,
            fallbacks=fallbacks,
            fallback_after_seconds=args.fallback_after_seconds,
        )
    except (OSError, ValueError) as error:
        print(f"lmscale simulate: {error}", file=sys.stderr)
        return 2
    with progress_bar(enabled=sys.stderr.isatty() and args.output == "text") as report:
        outcome = policies.run(args.policy, setup, clock=time.perf_counter, progress=report)
    summary = dict(outcome.summary)
    summary["target_per_replica"] = round(setup.target_per_replica, 2)
    if args.output == "json":
        print(json.dumps(_json_safe(summary), sort_keys=True))
    else:
        print(render_summary(summary))
    if args.plot:
        plot_runs(
            args.plot,
            {outcome.summary["policy"]: outcome.run},
            title=f"{args.trace.name}: {args.model} on {', '.join(g for g, _ in gpus)}",
            slo_ttft_s=setup.slo.ttft_seconds,
        )
        if args.output == "text":
            print(f"plot: {args.plot}")
    return 0


def load_trace(path: Path, fmt: str | None, *, rate: float, seed: int) -> list[Request]:
    """Read a trace file in either format and apply `--rate-scale`."""
    kind = trace.TraceFormat(fmt) if fmt else trace.guess_format(path.name)
    with path.open(encoding="utf-8", newline="") as lines:
        requests = trace.parse(lines, kind, source=str(path))
    return trace.rate_scale(requests, rate, seed=seed) if rate != 1.0 else requests


def render_summary(summary: dict[str, Any]) -> str:
    """A short aligned table a person can read."""
    chosen = f" ({summary['chosen']})" if "chosen" in summary else ""
    lines = [f"policy {summary['policy']}{chosen}"]
    for key, label, pattern in SUMMARY_ROWS:
        value = summary.get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        lines.append(f"  {label:<15} {pattern.format(value)}")
    by_type = summary.get("replica_hours_by_type")
    if by_type:
        mix = ", ".join(f"{kind} {hours:,.2f}" for kind, hours in by_type.items())
        lines.append(f"  {'replica-hours':<15} {mix}")
    speed = summary.get("speedup")
    if speed and math.isfinite(speed):
        lines.append(f"  {'speed':<15} {speed:,.0f}x real time")
    return "\n".join(lines)


@contextmanager
def progress_bar(*, enabled: bool) -> Iterator[Callable[[float], None] | None]:
    """A rich progress bar on a terminal; nothing otherwise."""
    if not enabled or missing_sim_extra("rich") is not None:
        yield None  # (rich comes with lmscale[sim]; without it, no bar)
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("simulating"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("simulate", total=1.0)
        yield lambda fraction: bar.update(task, completed=min(1.0, fraction))


def plot_runs(
    path: Path, runs: dict[str, SimRun], *, title: str, slo_ttft_s: float | None = None
) -> None:
    """Load, replicas and TTFT p95 per minute, one panel each, one line per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (load, fleet, latency) = plt.subplots(3, 1, figsize=(11, 8), sharex=True)
    first = next(iter(runs.values()))
    per_minute = windows(first)
    load.plot([w[0] / 60 for w in per_minute], [w[1] / 60 for w in per_minute], color="black")
    load.set_ylabel("requests/s")
    load.set_title(title)
    for name, run in runs.items():
        fleet.step(
            [p.time / 60 for p in run.timeline],
            [p.replicas for p in run.timeline],
            where="post",
            label=name,
        )
        minute = windows(run)
        latency.plot([w[0] / 60 for w in minute], [w[2] for w in minute], label=name)
    fleet.set_ylabel("replicas")
    fleet.legend(loc="upper left", fontsize=8)
    latency.set_ylabel("TTFT p95 (s)")
    latency.set_yscale("log")
    if slo_ttft_s:
        latency.axhline(slo_ttft_s, color="red", linestyle="--", linewidth=1, label="SLO")
    latency.set_xlabel("minutes")
    latency.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _json_safe(summary: dict[str, Any]) -> dict[str, Any]:
    """NaN and infinity are not JSON: report them as null."""
    return {
        key: (None if isinstance(value, float) and not math.isfinite(value) else value)
        for key, value in summary.items()
    }
