"""One calibration, before and after, on the same inputs (part of `make bench`).

For every example resource: CPU time of `calibrate` and of the reference search it
replaced (`calibrate_by_bisection`, every probe a full steady state), their band tops, and
the losses at the new band top measured on the reference sample, against the two loss
rules. Writes a section of docs/operator-benchmarks.md (between the calibration markers).
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from lmscale.controller.desired import Desired, desired_state
from lmscale.planner import performance
from lmscale.sim import calibrate
from lmscale.sim.results import Slo

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "operator-benchmarks.md"
BEGIN, END = "<!-- calibration benchmark: begin -->", "<!-- calibration benchmark: end -->"


def measure(path: Path) -> dict[str, float | str] | None:
    doc = yaml.safe_load(path.read_text())
    doc["metadata"].update(namespace="bench", uid="bench", generation=1)
    outcome = desired_state(doc)
    if not isinstance(outcome, Desired) or not outcome.lmd.spec.scaling.enabled:
        return None
    objective, tolerance = outcome.lmd.spec.slo, outcome.lmd.spec.scaling.tolerance
    perf = performance.replica_performance(outcome.plan)
    lengths = calibrate.lengths_from_means(objective.mean_prompt_tokens,
                                           objective.mean_output_tokens)
    slo = Slo(ttft_seconds=objective.ttft_p95_ms / 1000, tpot_seconds=objective.tpot_p95_ms / 1000)
    started = time.process_time()
    new = calibrate.calibrate(perf, lengths, slo=slo, tolerance=tolerance)
    new_cpu = time.process_time() - started
    started = time.process_time()
    old = calibrate.calibrate_by_bisection(perf, lengths, slo=slo, tolerance=tolerance)
    old_cpu = time.process_time() - started
    idle = calibrate.steady_state(perf, lengths, rate=calibrate.IDLE_RATE, slo=slo).attainment

    def loss(rate: float) -> float:
        return idle - calibrate.steady_state(perf, lengths, rate=rate, slo=slo).attainment

    return {"example": path.parent.name, "old_cpu": old_cpu, "new_cpu": new_cpu,
            "old_rate": old.rate, "new_rate": new.rate, "old_target": old.target,
            "new_target": new.target, "steady_loss": loss(new.rate),
            "band_loss": loss(new.rate * (1 + tolerance)), "idle": idle}


def section(rows: list[dict[str, float | str]]) -> str:
    budget = 0.01
    lines = [BEGIN, "", "## One calibration, before and after", "",
             f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `hack/bench_calibration.py`: "
             "CPU seconds of one calibration per example resource, the search it replaced "
             "(`calibrate_by_bisection`) on the same inputs in the same run, and the losses "
             "at the new band top measured on the reference sample (rules: at most "
             f"{calibrate.STEADY_SHARE * budget:.3f} in steady state, {budget:.2f} one "
             "tolerance band past it, relative to the idle attainment).", "",
             "| example | before (CPU s) | after (CPU s) | cheaper | band top before -> after "
             "(req/s per replica) | loss at the top | loss one band past | within both rules |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ok = (float(r["steady_loss"]) <= calibrate.STEADY_SHARE * budget + 1e-9
              and float(r["band_loss"]) <= budget + 1e-9)
        lines.append(
            f"| {r['example']} | {float(r['old_cpu']):.2f} | {float(r['new_cpu']):.2f} | "
            f"{float(r['old_cpu']) / float(r['new_cpu']):.1f}x | {float(r['old_rate']):.3f} -> "
            f"{float(r['new_rate']):.3f} | {float(r['steady_loss']):.4f} | "
            f"{float(r['band_loss']):.4f} | {'yes' if ok else 'NO'} |")
    total_old = sum(float(r["old_cpu"]) for r in rows)
    total_new = sum(float(r["new_cpu"]) for r in rows)
    lines += ["", f"All together {total_old:.1f} s before, {total_new:.1f} s after "
              f"({total_old / total_new:.1f}x). Goal: one calibration under 1.5 s and 10x "
              "cheaper.", "", END]
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    current = OUT.read_text() if OUT.exists() else ""
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        OUT.write_text(head + text + rest.split(END, 1)[1].lstrip("\n"))
    else:
        OUT.write_text(current.rstrip("\n") + "\n\n" + text)


def main() -> int:
    rows = []
    for path in sorted((REPO / "examples").glob("*/lmd.yaml")):
        row = measure(path)
        if row is not None:
            rows.append(row)
            print(row, flush=True)
    write_section(section(rows))
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
