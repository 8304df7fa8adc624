"""`make demo`: the operator scaling a model on the local simulated GPU cluster.

Brings the cluster up, installs the CRD, starts the operator and the live model-server
simulator replaying a real production trace faster than real time, applies a
LanguageModelDeployment, shows replicas, queue and TTFT live, writes a plot, and tears down.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.live import Live  # noqa: E402
from rich.table import Table  # noqa: E402

from lmscale.devcluster import cluster  # noqa: E402
from lmscale.devcluster.cluster import kubectl  # noqa: E402
from lmscale.devcluster.layout import Layout  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TRACES = Path(os.environ.get("LMSCALE_TRACES", REPO.parent / "shared" / "traces"))
TRACE = TRACES / "AzureLLMInferenceTrace_conv.csv"
console = Console()


def start(name: str, argv: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{name}.log", "ab") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)


def http_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.load(response)
    except OSError:
        return None


def sample(layout: Layout, sim_url: str, started: float) -> dict[str, Any]:
    body = json.loads(kubectl(layout, "get", "lmd", "chat", "-n", "demo", "-o", "json"))
    status = body.get("status") or {}
    metrics = status.get("metrics") or {}
    state = (http_json(sim_url + "/state") or {}).get("deployments", {}).get("demo/chat", {})
    return {
        "t": time.monotonic() - started,
        "desired": status.get("desiredReplicas", 0),
        "ready": status.get("readyReplicas", 0),
        "waiting": metrics.get("waiting"),
        "running": metrics.get("running"),
        "ttft_p95_ms": (metrics["ttftP95Seconds"] * 1000) if "ttftP95Seconds" in metrics
        else None,
        "rps": state.get("offeredRps"),
        "reason": status.get("lastScaleReason", ""),
    }


def view(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="lmscale demo: Llama-3.1-8B on simulated H100s, Azure trace replay")
    for column in ("time", "offered rps", "desired", "ready", "waiting", "running",
                   "TTFT p95 (ms)", "last scale"):
        table.add_column(column)
    for row in rows[-15:]:
        table.add_row(
            f"{row['t']:5.0f}s", _fmt(row["rps"]), str(row["desired"]), str(row["ready"]),
            _fmt(row["waiting"]), _fmt(row["running"]), _fmt(row["ttft_p95_ms"]),
            (row["reason"] or "")[:60])
    return table


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    t = [r["t"] for r in rows]
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    axes[0].plot(t, [r["rps"] or 0 for r in rows], color="tab:gray")
    axes[0].set_ylabel("offered load (req/s)")
    axes[1].step(t, [r["desired"] for r in rows], where="post", label="desired")
    axes[1].step(t, [r["ready"] for r in rows], where="post", label="ready")
    axes[1].set_ylabel("replicas")
    axes[1].legend(loc="upper left")
    axes[2].plot(t, [r["ttft_p95_ms"] if r["ttft_p95_ms"] is not None else float("nan")
                     for r in rows], color="tab:red", label="TTFT p95")
    axes[2].axhline(500, color="tab:red", linestyle="--", label="SLO 500 ms")
    axes[2].set_ylabel("TTFT p95 (ms)")
    axes[2].set_xlabel("demo time (s)")
    axes[2].legend(loc="upper left")
    fig.suptitle("lmscale scaling Llama-3.1-8B on the local GPU cluster")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("DEMO_SECONDS",
                                                                             180)))
    parser.add_argument("--speed", type=float, default=10.0,
                        help="trace replay speed (the trace is 58 minutes long)")
    parser.add_argument("--plot", type=Path, default=REPO / "demo.png")
    parser.add_argument("--keep", action="store_true", help="leave the cluster running")
    args = parser.parse_args()
    if not TRACE.is_file():
        console.print(f"[red]trace not found: {TRACE}[/red]")
        return 1

    layout = Layout.default()
    was_running = all(cluster.status(layout).values())
    console.rule("bringing up the local GPU cluster")
    cluster.up(layout)
    console.print(kubectl(layout, "get", "nodes", "-L", "nvidia.com/gpu.product"))
    kubectl(layout, "apply", "--server-side", "-f", str(REPO / "crds"))
    kubectl(layout, "wait", "--for=condition=Established",
            "crd/languagemodeldeployments.lmscale.dev")
    kubectl(layout, "apply", "-f", "-",
            stdin="apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n")
    # Shifted like the cluster's own ports, so several checkouts can each run the demo.
    offset = int(os.environ.get("LMSCALE_CLUSTER_PORT_OFFSET", "0"))
    sim_url = f"http://127.0.0.1:{9400 + offset}"
    env = {**os.environ, "KUBECONFIG": str(layout.kubeconfig),
           "LMSCALE_PROMETHEUS_URL": layout.prometheus_url,
           "LMSCALE_SCALER_PERIOD_SECONDS": "5", "LMSCALE_METRICS_PORT": str(18080 + offset)}
    lmscale = str(REPO / ".venv" / "bin" / "lmscale")
    operator = start("operator", [lmscale, "run", "--standalone", "-A"], env, layout.logs)
    sim = start("sim", [lmscale, "sim", "serve", "--kubeconfig", str(layout.kubeconfig),
                        "--listen", sim_url.removeprefix("http://"), "--register-targets",
                        str(layout.prometheus_targets), "--load", f"trace:{TRACE}@{args.speed}x"],
                env, layout.logs)
    rows: list[dict[str, Any]] = []
    try:
        console.rule("applying examples/demo/lmd.yaml")
        console.print(kubectl(layout, "apply", "-n", "demo", "-f",
                              str(REPO / "examples" / "demo" / "lmd.yaml")))
        started = time.monotonic()
        with Live(view(rows), console=console, refresh_per_second=2) as live:
            while time.monotonic() - started < args.seconds:
                rows.append(sample(layout, sim_url, started))
                live.update(view(rows))
                time.sleep(2)
        console.print(kubectl(layout, "get", "lmd,deploy,pods", "-n", "demo", "-o", "wide"))
        console.print(kubectl(layout, "get", "events", "-n", "demo",
                              "--field-selector", "reason=Scaled"))
        plot(rows, args.plot)
        console.print(f"[green]plot of the run: {args.plot}[/green]")
    finally:
        for process in (sim, operator):
            process.terminate()
            process.wait(timeout=30)
        if not was_running and not args.keep:
            console.rule("tearing down")
            cluster.down(layout)
        elif not args.keep:
            kubectl(layout, "delete", "namespace", "demo", "--wait=false")
    peak = max((r["desired"] for r in rows), default=0)
    console.print(f"peak replicas: {peak}; scale events: "
                  f"{len({r['reason'] for r in rows if r['reason']})}")
    return 0 if peak > 1 else 1


if __name__ == "__main__":
    sys.exit(main())
