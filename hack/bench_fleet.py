"""The operator at fleet scale, on the real local control plane (part of `make bench`).

For each fleet size: the operator (`lmscale run -A`) as a real process; N resources of one
shared spec over 10 namespaces, applied at once, against as many plain Deployments written
by the same `kubectl apply` (the baseline of the same run); then the operator's resident
memory, its CPU while idle, the writes it makes to the apiserver while nothing changes
(resourceVersions of every object it writes, and its Events), its cycle times, and the same
after a restart. Last, 100 resources of distinct specs (100 calibrations): how long a
restarted operator takes to its first scaling decision.

Writes a section of docs/operator-benchmarks.md (between the fleet markers).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from bench import lmd_body, percentile, watch_creations  # hack/, the script's own directory

from lmscale.devcluster import cluster
from lmscale.devcluster.cluster import kubectl
from lmscale.devcluster.layout import Layout

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "operator-benchmarks.md"
BEGIN, END = "<!-- fleet benchmark: begin -->", "<!-- fleet benchmark: end -->"
NAMESPACES = 10
PERIOD = 10.0
METRICS_PORT = 18095
WRITTEN_KINDS = "lmd,deployments,services,poddisruptionbudgets"
VERSIONS = ("jsonpath={range .items[*]}{.kind}/{.metadata.name}="
            "{.metadata.resourceVersion}{'\\n'}{end}")


def lmd(name: str, namespace: str, *, ttft_ms: int = 1000) -> dict[str, Any]:
    body = lmd_body(name, namespace)
    body["spec"]["slo"] = {"ttftP95Ms": ttft_ms, "tpotP95Ms": 100}
    return body


def plain(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"a": name}},
                     "template": {"metadata": {"labels": {"a": name}},
                                  "spec": {"containers": [{"name": "c", "image": "x"}]}}}}


class Operator:
    """`lmscale run -A` as a process: its RSS, CPU time and /metrics."""

    def __init__(self, layout: Layout, log: Path, *, profile: Path | None = None) -> None:
        self.layout, self.log, self.profile = layout, log, profile
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.runs = 0

    def start(self) -> None:
        env = {**os.environ, "KUBECONFIG": str(self.layout.kubeconfig),
               "LMSCALE_PROMETHEUS_URL": self.layout.prometheus_url,
               "LMSCALE_METRICS_PORT": str(METRICS_PORT),
               "LMSCALE_SCALER_PERIOD_SECONDS": str(PERIOD), "LMSCALE_LOG_LEVEL": "WARNING",
               "LMSCALE_HEALTH_PORT": str(METRICS_PORT + 1)}
        command = [str(REPO / ".venv" / "bin" / "lmscale"), "run", "--standalone", "-A"]
        if self.profile is not None:  # where the memory is at its peak, per allocating line
            self.runs += 1
            out_file = self.profile / f"{self.log.stem}-{self.runs}.memray"
            out_file.unlink(missing_ok=True)
            command = [str(REPO / ".venv" / "bin" / "memray"), "run", "--aggregate",
                       "-o", str(out_file), *command]
        with self.log.open("ab") as out:
            self.started = time.monotonic()
            self.process = subprocess.Popen(command, env=env, stdout=out,
                                            stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        time.sleep(2)  # the metrics port is free again

    def rss_mb(self) -> float:
        assert self.process is not None
        text = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024  # type: ignore[union-attr]

    def cpu_seconds(self) -> float:
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def metrics(self) -> dict[str, float]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics",
                                        timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return {}
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("#") or " " not in line:
                continue
            name, _, value = line.rpartition(" ")
            key = name.split("{")[0] + ("{" + name.split("{", 1)[1] if "{" in name else "")
            values[key] = values.get(key, 0.0) + float(value)
        return values


def total(metrics: dict[str, float], name: str) -> float:
    """The sum of the samples of `name`: a metric's name, or a name with its labels."""
    return sum(v for k, v in metrics.items() if k == name or k.split("{")[0] == name)


def wait_until(what: str, check: Any, timeout: float, interval: float = 0.5) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(interval)
    raise TimeoutError(f"{what} not within {timeout:.0f} s")


def versions(layout: Layout, namespaces: list[str]) -> dict[str, str]:
    """kind/namespace/name -> resourceVersion of everything the operator writes."""
    found: dict[str, str] = {}
    for namespace in namespaces:
        out = kubectl(layout, "get", WRITTEN_KINDS, "-n", namespace, "-o", VERSIONS)
        for line in out.splitlines():
            key, _, version = line.partition("=")
            found[f"{namespace}/{key}"] = version
    return found


def lmscale_events(layout: Layout, namespaces: list[str]) -> int:
    count = 0
    for namespace in namespaces:
        out = kubectl(layout, "get", "events", "-n", namespace, "-o",
                      "jsonpath={range .items[*]}{.source.component}{'\\n'}{end}")
        count += sum(1 for line in out.splitlines() if line.strip() == "lmscale")
    return count


def apply_and_time(layout: Layout, docs: list[dict[str, Any]], kinds: list[str],
                   timeout: float) -> list[float]:
    """`kubectl apply --server-side` of `docs` at once; per object, seconds from the
    apply's start until every one of `kinds` with its namespace/name exists."""
    names = {f"{d['metadata']['namespace']}/{d['metadata']['name']}" for d in docs}
    seen: dict[str, dict[str, float]] = {kind: {} for kind in kinds}
    stop = threading.Event()
    threads = [watch_creations(layout, kind, None, names, seen[kind], stop) for kind in kinds]
    time.sleep(2)
    started = time.perf_counter()
    kubectl(layout, "apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(docs))
    deadline = time.monotonic() + timeout
    while any(len(s) < len(names) for s in seen.values()) and time.monotonic() < deadline:
        time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(timeout=5)
    return [max(seen[k][n] for k in kinds) - started for n in names
            if all(n in seen[k] for k in kinds)]


def settle(layout: Layout, namespaces: list[str], *, quiet: float, timeout: float) -> float:
    """Seconds until nothing in `namespaces` moved for `quiet` seconds (at most `timeout`):
    the idle window then measures the operator, not the cluster catching up."""
    started = time.monotonic()
    last = versions(layout, namespaces)
    while time.monotonic() - started < timeout:
        time.sleep(quiet)
        now = versions(layout, namespaces)
        if now == last:
            break
        last = now
    return time.monotonic() - started


def statuses(layout: Layout, namespaces: list[str]) -> dict[str, dict[str, Any]]:
    """namespace/name -> status of every resource."""
    found: dict[str, dict[str, Any]] = {}
    for namespace in namespaces:
        for item in json.loads(kubectl(layout, "get", "lmd", "-n", namespace,
                                       "-o", "json"))["items"]:
            found[f"{namespace}/{item['metadata']['name']}"] = item.get("status") or {}
    return found


def moved(before: dict[str, str], after: dict[str, str],
          before_status: dict[str, dict[str, Any]], after_status: dict[str, dict[str, Any]]
          ) -> dict[str, int]:
    """What the writes were: objects moved by kind, and the resources' status fields that
    changed (a write that nothing explains is a bug to find)."""
    counts: dict[str, int] = {}
    for key, version in after.items():
        if before.get(key) != version:
            kind = key.split("/")[1]
            counts[kind] = counts.get(kind, 0) + 1
    for key, status in after_status.items():
        old = before_status.get(key) or {}
        for field in sorted({*status, *old}):
            if status.get(field) != old.get(field):
                counts[f"status.{field}"] = counts.get(f"status.{field}", 0) + 1
    return counts


def idle_window(layout: Layout, operator: Operator, namespaces: list[str],
                seconds: float) -> dict[str, Any]:
    """CPU, writes and cycle times while nothing changes, over `seconds`."""
    before_status = statuses(layout, namespaces)
    before_versions = versions(layout, namespaces)
    before_events = lmscale_events(layout, namespaces)
    before_metrics = operator.metrics()
    cpu = operator.cpu_seconds()
    time.sleep(seconds)
    cpu = operator.cpu_seconds() - cpu
    after_metrics = operator.metrics()
    after_versions = versions(layout, namespaces)
    written = moved(before_versions, after_versions, before_status,
                    statuses(layout, namespaces))
    writes = sum(n for what, n in written.items() if not what.startswith("status."))
    events = lmscale_events(layout, namespaces) - before_events
    cycles = (total(after_metrics, "lmscale_scaling_cycle_duration_seconds_count")
              - total(before_metrics, "lmscale_scaling_cycle_duration_seconds_count"))
    spent = (total(after_metrics, "lmscale_scaling_cycle_duration_seconds_sum")
             - total(before_metrics, "lmscale_scaling_cycle_duration_seconds_sum"))
    minutes = seconds / 60
    return {"idle_cpu_per_minute": cpu / minutes, "writes_per_minute": writes / minutes,
            "events_per_minute": events / minutes,
            "steady_cycle_seconds": spent / cycles if cycles else float("nan"),
            "objects_watched": len(after_versions), "written": written}


def errors(log: Path) -> int:
    """Failed requests and tracebacks in the operator's log: a write that failed is no
    write, so zero writes count only with zero errors."""
    text = log.read_text(errors="replace")
    return text.count("Traceback") + text.count("HTTP response body")


def first_cycle(operator: Operator, timeout: float) -> float:
    """The duration of the next cycle to finish (the first one, right after a start)."""
    def count() -> float:
        return total(operator.metrics(), "lmscale_scaling_cycle_duration_seconds_count")

    before = max(0.0, count())
    spent = total(operator.metrics(), "lmscale_scaling_cycle_duration_seconds_sum")
    wait_until("a cycle", lambda: count() >= before + 1, timeout, interval=0.2)
    return total(operator.metrics(), "lmscale_scaling_cycle_duration_seconds_sum") - spent


def bench_fleet(layout: Layout, count: int, logs: Path, idle_seconds: float,
                profile: Path | None = None) -> dict[str, Any]:
    stamp = int(time.time())
    namespaces = [f"fleet{count}-{stamp}-{i}" for i in range(NAMESPACES)]
    for namespace in namespaces:
        kubectl(layout, "create", "namespace", namespace)
    operator = Operator(layout, logs / f"operator-{count}.log", profile=profile)
    result: dict[str, Any] = {"resources": count}
    try:
        operator.start()
        wait_until("the operator's /metrics", lambda: bool(operator.metrics()), 60)
        time.sleep(3)
        result["rss_start_mb"] = operator.rss_mb()
        docs = [lmd(f"m{i:04d}", namespaces[i % NAMESPACES]) for i in range(count)]
        children = apply_and_time(layout, docs, ["deployments", "services"], timeout=900)
        baseline = apply_and_time(
            layout, [plain(f"plain-{i:04d}", namespaces[i % NAMESPACES]) for i in range(count)],
            ["deployments"], timeout=900)
        result.update(completed=len(children), children_p50=percentile(children, 0.5),
                      children_p95=percentile(children, 0.95),
                      plain_p50=percentile(baseline, 0.5), plain_p95=percentile(baseline, 0.95))
        for namespace in namespaces:  # the baseline's Deployments go before the idle window
            kubectl(layout, "delete", "deployments", "-n", namespace, "-l",
                    "!lmscale.dev/deployment", "--wait=false")
        result["first_cycle_seconds"] = first_cycle(operator, 120)
        # Settle: every resource calibrated, past the missing-metrics threshold, and its
        # pod started (the controllers create a large fleet's pods for minutes after its
        # Deployments exist, and each pod that turns ready is a change the status shows).
        time.sleep(3 * PERIOD)
        result["settled_seconds"] = 3 * PERIOD + settle(layout, namespaces, quiet=3 * PERIOD,
                                                        timeout=600)
        result["rss_created_mb"] = operator.rss_mb()
        result.update(idle_window(layout, operator, namespaces, idle_seconds))
        operator.stop()
        operator.start()
        result["restart_first_cycle_seconds"] = first_cycle(operator, 180)
        time.sleep(3 * PERIOD)
        result["rss_restarted_mb"] = operator.rss_mb()
        restarted = idle_window(layout, operator, namespaces, idle_seconds)
        result.update({f"restarted_{k}": v for k, v in restarted.items()})
        metrics = operator.metrics()
        result["restart_calibrations_computed"] = total(
            metrics, 'lmscale_calibrations_total{source="computed"}')
        result["operator_errors"] = errors(operator.log)
    finally:
        operator.stop()
        for namespace in namespaces:
            kubectl(layout, "delete", "namespace", namespace, "--wait=false")
    return result


def bench_distinct(layout: Layout, count: int, logs: Path) -> dict[str, Any]:
    """`count` resources of distinct specs: the first start calibrates each; a restart
    must decide within one cycle (persisted calibrations)."""
    stamp = int(time.time())
    namespace = f"distinct-{stamp}"
    kubectl(layout, "create", "namespace", namespace)
    operator = Operator(layout, logs / "operator-distinct.log")
    result: dict[str, Any] = {"resources": count}
    try:
        operator.start()
        wait_until("the operator's /metrics", lambda: bool(operator.metrics()), 60)
        docs = [lmd(f"d{i:03d}", namespace, ttft_ms=400 + 5 * i) for i in range(count)]
        kubectl(layout, "apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(docs))
        started = time.monotonic()

        def computed() -> float:
            return total(operator.metrics(), 'lmscale_calibrations_total{source="computed"}')

        wait_until("every calibration", lambda: computed() >= count, 3600, interval=2)
        result["first_start_all_calibrated_seconds"] = time.monotonic() - started
        metrics = operator.metrics()
        result["calibrations_computed"] = total(metrics, "lmscale_calibration_cpu_seconds_count")
        result["calibration_cpu_mean"] = (
            total(metrics, "lmscale_calibration_cpu_seconds_sum")
            / max(1.0, result["calibrations_computed"]))
        result["first_start_cycles"] = total(metrics,
                                             "lmscale_scaling_cycle_duration_seconds_count")
        time.sleep(2 * PERIOD)  # persisted in status
        operator.stop()
        operator.start()

        def decided() -> bool:
            return total(operator.metrics(), "lmscale_scaling_decisions_total") >= count

        wait_until("decisions after the restart", decided, 600, interval=0.25)
        result["restart_to_decisions_seconds"] = time.monotonic() - operator.started
        metrics = operator.metrics()
        result["restart_computed"] = total(metrics, 'lmscale_calibrations_total{source="computed"}')
        result["restart_persisted"] = total(
            metrics, 'lmscale_calibrations_total{source="persisted"}')
        result["restart_cycles"] = total(metrics, "lmscale_scaling_cycle_duration_seconds_count")
        result["operator_errors"] = errors(operator.log)
    finally:
        operator.stop()
        kubectl(layout, "delete", "namespace", namespace, "--wait=false")
    return result


def section(fleets: list[dict[str, Any]], distinct: dict[str, Any] | None) -> str:
    lines = [BEGIN, "", "## The operator at fleet scale",
             "",
             f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `hack/bench_fleet.py` (part "
             "of `make bench`): `lmscale run -A` as a process, period "
             f"{PERIOD:.0f} s; N resources of one shared spec over {NAMESPACES} namespaces, "
             "`kubectl apply --server-side` at once; no Prometheus series for them, so nothing "
             "scales (the idle case). Baseline: as many plain Deployments in one `kubectl "
             "apply` of the same run. Writes are objects whose resourceVersion moved (the "
             "resources, Deployments, Services, PDBs) plus lmscale's Events, counted once "
             "nothing in the fleet's namespaces moved for three periods (the controllers "
             "start a large fleet's pods for minutes after its Deployments exist: "
             + ", ".join(f"{f['settled_seconds']:.0f} s at {f['resources']}" for f in fleets)
             + ").",
             "",
             "| resources | RSS after creation | RSS after restart | idle CPU | writes/min idle "
             "(after restart) | Events/min idle | first cycle (after restart) | steady cycle "
             "| apply -> children p50 / p95 | plain Deployments p50 / p95 | p95 ratio |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for f in fleets:
        lines.append(
            f"| {f['resources']} | {f['rss_created_mb']:.0f} MB | {f['rss_restarted_mb']:.0f} MB "
            f"| {f['idle_cpu_per_minute']:.2f} s/min | {f['writes_per_minute']:.1f} "
            f"({f['restarted_writes_per_minute']:.1f}) | {f['events_per_minute']:.1f} | "
            f"{f['first_cycle_seconds']:.2f} s ({f['restart_first_cycle_seconds']:.2f} s) | "
            f"{f['steady_cycle_seconds']:.2f} s | {f['children_p50']:.1f} / "
            f"{f['children_p95']:.1f} s | {f['plain_p50']:.1f} / {f['plain_p95']:.1f} s | "
            f"{f['children_p95'] / f['plain_p95']:.2f}x |")
    lines += ["", "Errors in the operator's logs (failed requests, tracebacks): "
              + ", ".join(f"{f['operator_errors']} at {f['resources']}" for f in fleets)
              + (f", {distinct['operator_errors']} with distinct specs" if distinct else "")
              + ".", "", "Goals: 1,000 resources under 150 MB RSS, idle CPU under 2 s per minute, "
              "zero writes per minute when nothing changes, children within 2x the plain "
              "Deployments' time."]
    if distinct:
        d = distinct
        lines += ["", f"### Restart with {d['resources']} distinct specs", "",
                  f"{d['resources']} resources, each with its own SLO, so each has its own "
                  "`gpusPerReplica: auto` choice and target: the first start computed "
                  f"{d['calibrations_computed']:.0f} calibrations one after another in the "
                  f"background in {d['first_start_all_calibrated_seconds']:.0f} s "
                  f"({d['calibration_cpu_mean']:.2f} s of CPU each on average), while the "
                  f"scaler ran {d['first_start_cycles']:.0f} cycles; the "
                  "restarted operator read them back from status "
                  f"({d['restart_persisted']:.0f} persisted, {d['restart_computed']:.0f} "
                  f"computed) and had decided for all {d['resources']} "
                  f"{d['restart_to_decisions_seconds']:.1f} s after its process started, in "
                  f"{d['restart_cycles']:.0f} cycle(s) (period {PERIOD:.0f} s). Goal: within "
                  "one cycle."]
    lines += ["", END]
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    current = OUT.read_text() if OUT.exists() else ""
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        OUT.write_text(head + text + "\n" + tail)  # the blank line after END stays
    else:
        OUT.write_text(current.rstrip("\n") + "\n\n" + text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--distinct", type=int, default=100)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--logs", type=Path, default=Path("/tmp/lmscale-bench-fleet"))
    parser.add_argument("--profile-memory", type=Path, metavar="DIR", default=None,
                        help="run the operator under memray (pip install memray) and write "
                        "its captures to DIR; read them with `memray summary FILE` (the RSS "
                        "figures then include memray's own)")
    parser.add_argument("--no-write", action="store_true",
                        help="print the figures only, leaving docs/operator-benchmarks.md as "
                        "it is (experiments: hack/memory_probe, MALLOC_ARENA_MAX)")
    args = parser.parse_args()
    if args.profile_memory is not None:
        args.profile_memory.mkdir(parents=True, exist_ok=True)
    args.logs.mkdir(parents=True, exist_ok=True)
    layout = Layout.default()
    cluster.up(layout)
    kubectl(layout, "apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    fleets = []
    for size in (int(s) for s in args.sizes.split(",") if s):
        fleets.append(bench_fleet(layout, size, args.logs, args.idle_seconds,
                                  args.profile_memory))
        print(json.dumps(fleets[-1]), flush=True)
    distinct = bench_distinct(layout, args.distinct, args.logs) if args.distinct else None
    print(json.dumps(distinct), flush=True)
    if args.profile_memory is None and not args.no_write:  # memray's memory would skew it
        write_section(section(fleets, distinct))
        print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
