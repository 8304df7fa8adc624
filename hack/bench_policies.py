#!/usr/bin/env python3
"""Policy benchmark: every policy on real and derived traffic, for two model/GPU pairs.

Writes docs/benchmarks.md (a table per scenario, the goals, how to reproduce) and one PNG
per scenario under docs/benchmarks/. Traffic is read from ../shared/traces (override
with LMSCALE_TRACES) and never copied into the repository:
- azure: the Azure conversation trace (bursty, real), rate-scaled;
- diurnal: ServeGen's m-small daily rate envelope (first day, 3x between night and
  evening) compressed 6x into four hours, Poisson arrivals, Azure token lengths;
- long-context: the Azure trace with prompts three times longer.
Each is sized so the busiest minute needs about `PEAK_REPLICAS` replicas at the
calibrated target; nothing in lmscale's policy is tuned per scenario. Three stress shapes
check that it does not fit those three: ServeGen's second day compressed twice as hard
(the load doubles within minutes), the Azure trace with another random rate-scaling draw,
and the Azure trace on a small fleet (`SMALL_PEAK_REPLICAS` at its busiest minute).

Usage: .venv/bin/python hack/bench_policies.py [--quick] [--only SCENARIO]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "operator"))

from lmscale.commands.simulate import plot_runs  # noqa: E402
from lmscale.planner import catalog  # noqa: E402
from lmscale.sim import policies, scenario, synth, trace  # noqa: E402
from lmscale.sim.request import Request  # noqa: E402
from lmscale.sim.simulator import SimRun  # noqa: E402

TRACES = Path(os.environ.get("LMSCALE_TRACES", REPO.parent / "shared" / "traces"))
AZURE = "AzureLLMInferenceTrace_conv.csv"
SERVEGEN = "servegen_aggregate_rate_10min.csv"
# Model, GPU, and the TTFT objective its hardware can meet for almost every Azure prompt
# (an L40S prefills a 4,500-token prompt in about 0.7 s alone, so 1 s would leave no room).
PAIRS = (
    ("qwen2.5-14b", "nvidia-l40s", 2.0),
    ("qwen2.5-32b", "nvidia-h100-80gb", 1.0),
)
PEAK_REPLICAS = 24
SMALL_PEAK_REPLICAS = 8
MAX_REPLICAS = 32
GOAL = 0.99
HPA_TARGETS = (0.6, 0.8, 0.95)
KEDA_THRESHOLDS = (1.0, 5.0, 10.0)
SEED = 1


@dataclass(frozen=True)
class Traffic:
    """A named traffic shape: requests at unit scale, its objectives, how to rescale it."""

    name: str
    description: str
    requests: list[Request]
    ttft_s: float
    tpot_s: float
    rescale: Callable[[list[Request], float], list[Request]]
    stress: bool = False
    peak_replicas: int = PEAK_REPLICAS


def load_traffic(model_key: str, ttft_s: float) -> list[Traffic]:
    """The traffic shapes, at unit rate; long prompts get three times the TTFT."""
    with (TRACES / AZURE).open(encoding="utf-8", newline="") as lines:
        azure = trace.parse_azure(lines, source=AZURE)
    with (TRACES / SERVEGEN).open(encoding="utf-8", newline="") as lines:
        days = trace.parse_rate_envelope(lines, pool="m-small", source=SERVEGEN)
    lengths = [(r.prompt_tokens, r.output_tokens) for r in azure]
    max_prompt = catalog.model(model_key).max_context // 2

    def scale(requests: list[Request], factor: float) -> list[Request]:
        return trace.rate_scale(requests, factor, seed=SEED)

    def redraw(requests: list[Request], factor: float) -> list[Request]:
        return trace.rate_scale(requests, factor, seed=SEED + 1)

    def diurnal_at(peak: float) -> list[Request]:
        return synth.diurnal(days[:144], lengths=lengths, peak_rps=peak, time_scale=6, seed=SEED)

    def steep_at(peak: float) -> list[Request]:
        return synth.diurnal(
            days[144:288], lengths=lengths, peak_rps=peak, time_scale=12, seed=SEED
        )

    longer = synth.long_context(azure, prompt_factor=3.0, max_prompt_tokens=max_prompt)
    return [
        Traffic("azure", "Azure LLM conversation trace, 58 min, bursty", azure, ttft_s, 0.1, scale),
        Traffic(
            "diurnal",
            "ServeGen m-small day 1 rate envelope, 24 h compressed to 4 h, Azure token lengths",
            diurnal_at(1.0),
            ttft_s,
            0.1,
            lambda _requests, factor: diurnal_at(factor),
        ),
        Traffic(
            "long-context",
            "Azure trace with prompts 3x longer (mean ~3,500 tokens), TTFT objective 3x",
            longer,
            3 * ttft_s,
            0.1,
            scale,
        ),
        Traffic(
            "steep-diurnal",
            "ServeGen m-small day 2 rate envelope, 24 h compressed to 2 h (the load doubles "
            "within 5 min), Azure token lengths",
            steep_at(1.0),
            ttft_s,
            0.1,
            lambda _requests, factor: steep_at(factor),
            stress=True,
        ),
        Traffic(
            "azure-redrawn",
            "Azure LLM conversation trace, rate-scaled with another random draw",
            azure,
            ttft_s,
            0.1,
            redraw,
            stress=True,
        ),
        Traffic(
            "azure-small-fleet",
            f"Azure LLM conversation trace on a small fleet ({SMALL_PEAK_REPLICAS} replicas "
            f"at its busiest minute)",
            azure,
            ttft_s,
            0.1,
            redraw,
            stress=True,
            peak_replicas=SMALL_PEAK_REPLICAS,
        ),
    ]


def sized(traffic: Traffic, model: str, gpu: str) -> scenario.Scenario:
    """Calibrate on the token mix, then scale the rate so the busiest minute needs the
    traffic's peak replicas at the calibrated rate per replica."""
    probe = scenario.build(
        traffic.requests,
        model=model,
        gpu=gpu,
        ttft_seconds=traffic.ttft_s,
        tpot_seconds=traffic.tpot_s,
        max_replicas=MAX_REPLICAS,
        attainment_goal=GOAL,
    )
    per_minute: dict[int, int] = {}
    for request in traffic.requests:
        minute = int(request.arrival_s // 60)
        per_minute[minute] = per_minute.get(minute, 0) + 1
    peak_rps = max(per_minute.values()) / 60
    factor = traffic.peak_replicas * probe.rate_per_replica / peak_rps
    requests = traffic.rescale(traffic.requests, factor)
    return scenario.build(
        requests,
        model=model,
        gpu=gpu,
        ttft_seconds=traffic.ttft_s,
        tpot_seconds=traffic.tpot_s,
        max_replicas=MAX_REPLICAS,
        attainment_goal=GOAL,
        calibration=probe.calibration,
    )


def run_all(setup: scenario.Scenario, *, quick: bool) -> dict[str, policies.Outcome]:
    """Every policy and setting on one scenario."""
    names = ["lmscale", "oracle", "static-peak"]
    hpa = HPA_TARGETS[1:2] if quick else HPA_TARGETS
    keda = KEDA_THRESHOLDS[1:2] if quick else KEDA_THRESHOLDS
    names += [f"hpa-gpu-util:{t:g}" for t in hpa] + [f"keda-queue:{t:g}" for t in keda]
    outcomes = {}
    for name in names:
        started = time.perf_counter()
        outcomes[name] = policies.run(name, setup, clock=time.perf_counter)
        summary = outcomes[name].summary
        print(
            f"    {name:<18} attainment {summary['slo_attainment']:.4f}  "
            f"GPU-h {summary['gpu_hours']:7.2f}  ({time.perf_counter() - started:.1f} s)",
            flush=True,
        )
    return outcomes


def verdict(outcomes: dict[str, policies.Outcome]) -> dict[str, Any]:
    """The goals: attainment, ratio to the oracle, saving against the best HPA/KEDA."""
    ours = outcomes["lmscale"].summary
    bound = min(
        (
            o.summary
            for key, o in outcomes.items()
            if key in ("oracle", "static-peak") and o.summary["slo_attainment"] >= GOAL
        ),
        key=lambda s: s["gpu_hours"],
        default=outcomes["oracle"].summary,
    )
    rivals = [
        o.summary
        for key, o in outcomes.items()
        if key.startswith(("hpa-gpu-util", "keda-queue"))
        and o.summary["slo_attainment"] >= min(ours["slo_attainment"], GOAL)
    ]
    best = min(rivals, key=lambda s: s["gpu_hours"], default=None)
    return {
        "attainment": ours["slo_attainment"],
        "oracle": bound["policy"] + (f" ({bound['chosen']})" if "chosen" in bound else ""),
        "oracle_gpu_hours": bound["gpu_hours"],
        "vs_oracle": ours["gpu_hours"] / bound["gpu_hours"],
        "best_rival": best["policy"] if best else None,
        "saving_vs_rival": 1 - ours["gpu_hours"] / best["gpu_hours"] if best else None,
        "speedup": ours["speedup"],
        "wall_seconds": ours["wall_seconds"],
        "trace_seconds": ours["trace_seconds"],
    }


def table(outcomes: dict[str, policies.Outcome], oracle_hours: float) -> list[str]:
    rows = [
        "| policy | SLO attainment | TTFT p95 | TTFT p99 | TPOT p95 | GPU-hours | vs oracle "
        "| cost | max replicas | scale events |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, outcome in outcomes.items():
        s = outcome.summary
        label = name + (f" ({s['chosen']})" if "chosen" in s else "")
        rows.append(
            f"| {label} | {s['slo_attainment']:.2%} | {_ms(s['ttft_p95_ms'])} | "
            f"{_ms(s['ttft_p99_ms'])} | {_ms(s['tpot_p95_ms'])} | {s['gpu_hours']:.2f} | "
            f"{s['gpu_hours'] / oracle_hours:.2f}x | ${s['cost']:.2f} | {s['max_replicas']} | "
            f"{s['scale_events']} |"
        )
    return rows


def _ms(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value / 1000:.1f} s" if value >= 10_000 else f"{value:,.0f} ms"


def write_report(results: list[dict[str, Any]], *, command: str, elapsed: float) -> None:
    """docs/benchmarks.md from the scenario results."""
    lines = [
        "# Policy benchmark",
        "",
        "Generated by `hack/bench_policies.py`; do not edit by hand. Reproduce with:",
        "",
        "```sh",
        command,
        "```",
        "",
        f"Every policy replays the same requests on simulated replicas (`lmscale.sim`: the "
        f"planner's step model, KV cache and cold start; least-requests balancing; metrics "
        f"15 s late). SLO attainment is the fraction of all requests meeting both objectives "
        f"(TTFT and TPOT per request). Each traffic shape is rate-scaled so its busiest "
        f"minute needs about {PEAK_REPLICAS} replicas ({SMALL_PEAK_REPLICAS} on the small "
        f"fleet); every autoscaler may use up to "
        f"{MAX_REPLICAS} and starts warm, with the replicas the busiest minute of the first "
        f"cold start needs at lmscale's target (as a settled fleet would run). `oracle` is "
        f"the cheaper "
        f"of two clairvoyant schedules that reach {GOAL:.0%}: one that follows future load "
        f"with replicas started exactly one cold start ahead, and the best fixed count "
        f"(`static-peak`). HPA and KEDA run with their documented defaults at several "
        f"targets; the comparison uses the cheapest one that reaches lmscale's attainment "
        f"(or {GOAL:.0%}).",
        "",
        "## Goals",
        "",
        "| scenario | lmscale attainment | GPU-hours vs oracle | saving vs best HPA/KEDA "
        "| simulation speed |",
        "|---|---:|---:|---:|---:|",
    ]
    for result in results:
        v = result["verdict"]
        name = result["name"] + (" (stress)" if result["stress"] else "")
        if not v["best_rival"]:
            saving = "no HPA/KEDA setting reaches it"
        elif v["saving_vs_rival"] >= 0:
            saving = f"{v['saving_vs_rival']:.0%} fewer than {v['best_rival']}"
        else:
            saving = f"{-v['saving_vs_rival']:.0%} more than {v['best_rival']}"
        lines.append(
            f"| {name} | {v['attainment']:.2%} | {v['vs_oracle']:.2f}x "
            f"| {saving} | {v['trace_seconds'] / 3600:.2f} h in {v['wall_seconds']:.1f} s "
            f"({v['speedup']:,.0f}x) |"
        )
    lines += [
        "",
        "Targets: attainment >= 99%, GPU-hours <= 1.3x oracle, >= 20% fewer GPU-hours than "
        "the best HPA/KEDA setting at the same attainment, one hour of trace at up to 32 "
        "replicas in under 10 s. The stress shapes check that the policy does not fit the "
        "first three: a load that doubles within minutes, another random draw of the Azure "
        "scaling, and a small fleet. No parameter of the policy is set from them.",
        "",
        "Reading the rivals: DCGM reads near 100% on any busy GPU, so an `hpa-gpu-util` "
        "target at or above 1/(1 + tolerance), about 0.91, never scales up once every GPU "
        "is busy (it can still scale down when GPUs idle). In these runs "
        "`hpa-gpu-util:0.95` kept its warm-start count throughout: a fixed fleet whose "
        "size the warm start chose, not a policy that reacted to load.",
        "",
    ]
    for result in results:
        lines += [
            f"## {result['name']}",
            "",
            f"{result['description']}. {result['requests']:,} requests over "
            f"{result['trace_seconds'] / 60:.0f} min; SLO TTFT {result['ttft_ms']:.0f} ms, "
            f"TPOT {result['tpot_ms']:.0f} ms; target {result['target']:.1f} in-flight "
            f"requests per replica (calibrated; the planner's mean-latency target is "
            f"{result['planner_target']:.0f}); cold start {result['cold_start']:.0f} s; "
            f"{result['gpus']} GPU(s) per replica.",
            "",
            *result["table"],
            "",
            f"![{result['name']}](benchmarks/{result['slug']}.png)",
            "",
        ]
    lines += [
        "## Environment",
        "",
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPU(s); whole benchmark {elapsed / 60:.1f} min.",
        "",
    ]
    (REPO / "docs" / "benchmarks.md").write_text("\n".join(lines), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one HPA and one KEDA setting")
    parser.add_argument("--only", help="run only scenarios whose name contains this")
    parser.add_argument("--no-write", action="store_true", help="print, write nothing")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = []
    for model, gpu, ttft_s in PAIRS:
        for traffic in load_traffic(model, ttft_s):
            name = f"{traffic.name}, {model} on {gpu}"
            if args.only and args.only not in name:
                continue
            print(f"{name}", flush=True)
            setup = sized(traffic, model, gpu)
            outcomes = run_all(setup, quick=args.quick)
            v = verdict(outcomes)
            slug = f"{traffic.name}-{model}-{gpu}".replace(".", "")
            results.append(
                {
                    "name": name,
                    "slug": slug,
                    "description": traffic.description,
                    "stress": traffic.stress,
                    "requests": len(setup.requests),
                    "trace_seconds": v["trace_seconds"],
                    "ttft_ms": traffic.ttft_s * 1000,
                    "tpot_ms": traffic.tpot_s * 1000,
                    "target": setup.target_per_replica,
                    "planner_target": setup.planner_target,
                    "cold_start": setup.config.cold_start_seconds,
                    "gpus": setup.perf.gpus,
                    "verdict": v,
                    "table": table(outcomes, v["oracle_gpu_hours"]),
                    "summaries": {k: o.summary for k, o in outcomes.items()},
                }
            )
            rounded = {k: round(x, 3) if isinstance(x, float) else x for k, x in v.items()}
            print(f"  -> {json.dumps(rounded)}", flush=True)
            if not args.no_write:
                runs: dict[str, SimRun] = {k: outcomes[k].run for k in _plotted(outcomes)}
                plot_runs(
                    REPO / "docs" / "benchmarks" / f"{slug}.png",
                    runs,
                    title=name,
                    slo_ttft_s=traffic.ttft_s,
                )
    if not args.no_write:
        command = ".venv/bin/python hack/bench_policies.py" + (" --quick" if args.quick else "")
        write_report(results, command=command, elapsed=time.perf_counter() - started)
        raw = {r["name"]: r["summaries"] for r in results}
        (REPO / "docs" / "benchmarks" / "results.json").write_text(
            json.dumps(raw, indent=1, sort_keys=True, default=str), encoding="utf-8"
        )
    print(f"done in {(time.perf_counter() - started) / 60:.1f} min")
    return 0


def _plotted(outcomes: dict[str, policies.Outcome]) -> list[str]:
    """lmscale, the oracle, static-peak and the cheapest HPA and KEDA settings."""
    keys = ["lmscale", "oracle", "static-peak"]
    for prefix in ("hpa-gpu-util", "keda-queue"):
        options = [k for k in outcomes if k.startswith(prefix)]
        if options:
            keys.append(
                max(
                    options,
                    key=lambda k: (
                        outcomes[k].summary["slo_attainment"] >= GOAL,
                        -outcomes[k].summary["gpu_hours"],
                    ),
                )
            )
    return keys


if __name__ == "__main__":
    raise SystemExit(main())
