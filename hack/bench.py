"""`make bench`: the operator's speed on the real local control plane and Prometheus.

Writes docs/operator-benchmarks.md. Every figure comes with a baseline measured in the same
run (the apiserver's own latency for the same writes, one bare Prometheus query), so the
ratios mean something on a shared 2-core machine. The policy benchmark on real traces is
hack/bench_policies.py (docs/benchmarks.md); `make bench` runs both.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from lmscale import operator_metrics
from lmscale.controller.desired import Desired, desired_state
from lmscale.controller.pods import PodInfo
from lmscale.devcluster import binaries, cluster
from lmscale.devcluster.cluster import kubectl
from lmscale.devcluster.layout import Layout, Ports
from lmscale.k8s import resources
from lmscale.k8s.client import Kube, make_api_client
from lmscale.metrics.client import PrometheusClient
from lmscale.metrics.reader import MetricsReader
from lmscale.scaler.cycle import Scaler
from lmscale.scaler.policy_spec import policy_spec
from lmscale.settings import OperatorSettings, PrometheusSettings

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "operator-benchmarks.md"
GATEWAY_SECTION = "<!-- gateway-benchmark:begin -->"
KEPT_SECTIONS = (GATEWAY_SECTION, "<!-- fleet benchmark: begin -->",
                 "<!-- calibration benchmark: begin -->")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def lmd_body(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "lmscale.dev/v1alpha1", "kind": "LanguageModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"model": {"name": "meta-llama/Llama-3.2-1B", "architecture": "llama-3.2-1b",
                           "maxContextLength": 4096},
                 "accelerator": {"type": "nvidia-l4"},
                 "scaling": {"minReplicas": 1, "maxReplicas": 4}},
    }


# --- 1. warm cluster start -------------------------------------------------------------


def bench_cluster_up() -> dict[str, float]:
    """A second cluster on other ports, binaries cached: time from nothing to ready."""
    with tempfile.TemporaryDirectory() as root:
        ports = Ports(etcd_client=43790, etcd_peer=43800, apiserver=36443,
                      controller_manager=40257, scheduler=40259, kwok=40247, prometheus=39090)
        layout = dataclasses.replace(Layout.default(), root=Path(root) / "c", real_node=False,
                                     ports=ports)
        for b in binaries.COMPONENT_OF:  # make sure nothing is built inside the timing
            binaries.find(b, hack=layout.hack)
        started = time.perf_counter()
        cluster.up(layout)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        cluster.up(layout)  # already up: the idempotent path
        again = time.perf_counter() - started
        cluster.down(layout)
    return {"up_seconds": cold, "up_again_seconds": again}


# --- 2. apply-to-children latency ------------------------------------------------------


def watch_creations(layout: Layout, kind: str, namespace: str | None, names: set[str],
                    seen: dict[str, float], stop: threading.Event) -> threading.Thread:
    """Record when each named object of `kind` first appears (kubectl get --watch).

    With `namespace` None the watch spans all namespaces and names read `namespace/name`.
    """
    kubectl_bin = binaries.find("kubectl", hack=layout.hack)
    scope, name_path = ((["-n", namespace], "{.metadata.name}") if namespace is not None
                        else (["-A"], "{.metadata.namespace}/{.metadata.name}"))

    def run() -> None:
        process = subprocess.Popen(
            [str(kubectl_bin), "--kubeconfig", str(layout.kubeconfig), "get", kind, *scope,
             "--watch", "-o", f"jsonpath={name_path}{{'\\n'}}"],
            stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None
        for line in process.stdout:
            name = line.strip()
            if name in names and name not in seen:
                seen[name] = time.perf_counter()
            if stop.is_set() or len(seen) == len(names):
                break
        process.terminate()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def bench_reconcile(layout: Layout, count: int) -> dict[str, float]:
    namespace = f"bench-{int(time.time())}"
    kubectl(layout, "create", "namespace", namespace)
    names = {f"m{i:03d}" for i in range(count)}
    env = {**os.environ, "KUBECONFIG": str(layout.kubeconfig),
           "LMSCALE_PROMETHEUS_URL": layout.prometheus_url, "LMSCALE_METRICS_PORT": "18090"}
    operator = subprocess.Popen([str(REPO / ".venv" / "bin" / "lmscale"), "run", "--standalone",
                                 "-n", namespace], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    try:
        time.sleep(5)  # operator up and watching
        deployments: dict[str, float] = {}
        services: dict[str, float] = {}
        applied: dict[str, float] = {}
        stop = threading.Event()
        threads = [watch_creations(layout, "lmd", namespace, names, applied, stop),
                   watch_creations(layout, "deployments", namespace, names, deployments, stop),
                   watch_creations(layout, "services", namespace, names, services, stop)]
        time.sleep(1)
        body = yaml.safe_dump_all([lmd_body(n, namespace) for n in sorted(names)])
        # All at once, as `kubectl apply -f dir/`; each latency runs from the moment the
        # apiserver has the resource (its watch event) to both children existing.
        kubectl(layout, "apply", "-f", "-", stdin=body)
        deadline = time.monotonic() + 300
        while (len(deployments) < count or len(services) < count) and time.monotonic() < deadline:
            time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join(timeout=5)
        both = [max(deployments[n], services[n]) - applied[n] for n in names
                if n in deployments and n in services and n in applied]
        # Baseline: the same number of plain Deployments written straight to the apiserver.
        plain = yaml.safe_dump_all([{
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": f"plain-{n}", "namespace": namespace},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"a": n}},
                     "template": {"metadata": {"labels": {"a": n}},
                                  "spec": {"containers": [{"name": "c", "image": "x"}]}}},
        } for n in sorted(names)])
        started = time.perf_counter()
        kubectl(layout, "apply", "-f", "-", stdin=plain)
        baseline = time.perf_counter() - started
    finally:
        operator.terminate()
        operator.wait(timeout=30)
        kubectl(layout, "delete", "namespace", namespace, "--wait=false")
    return {"count": count, "completed": len(both), "p50": percentile(both, 0.5),
            "p95": percentile(both, 0.95), "max": max(both),
            "baseline_plain_apply_seconds": baseline}


# --- 3. cost of one scaling cycle --------------------------------------------------------


def bench_cycle(layout: Layout, sizes: list[int]) -> list[dict[str, float]]:
    """Scaler.run_cycle over N real resources (status writes to the apiserver, queries to
    the real Prometheus); children come from memory, as kopf's indexes give them."""
    settings = OperatorSettings.from_env({"LMSCALE_PROMETHEUS_URL": layout.prometheus_url})
    kube = Kube(make_api_client(str(layout.kubeconfig)))
    results = []
    namespace = f"cycle-{int(time.time())}"
    kubectl(layout, "create", "namespace", namespace)
    try:
        created = 0
        for size in sizes:
            batch = [lmd_body(f"c{i:04d}", namespace) for i in range(created, size)]
            if batch:
                kubectl(layout, "apply", "-f", "-", stdin=yaml.safe_dump_all(batch))
            created = max(created, size)
            bodies = {(namespace, b["metadata"]["name"]): b
                      for b in kube.list(resources.LMDS, namespace=namespace)}
            bodies = dict(list(sorted(bodies.items()))[:size])
            now = datetime.now(UTC)
            deployments = {k: {"metadata": {"generation": 1}, "spec": {"replicas": 1},
                               "status": {"observedGeneration": 1, "updatedReplicas": 1}}
                           for k in bodies}
            pods = {k: [PodInfo(namespace=k[0], name=f"{k[1]}-0", created=now, ready=True,
                                ready_since=now, terminating=False, unschedulable_message=None,
                                crash_looping=False, deletion_cost=None)] for k in bodies}
            metrics = operator_metrics.OperatorMetrics(registry=CollectorRegistry())
            scaler = Scaler(kube=kube, reader=MetricsReader.from_settings(settings,
                                                                          metrics=metrics),
                            settings=settings, post_event=lambda *a: None, metrics=metrics)
            # The calibrated target is computed once per distinct spec and process (seconds of
            # CPU); every resource here shares one, so warm it outside the timing.
            warm = desired_state({**next(iter(bodies.values())),
                                  "metadata": {"name": "w", "namespace": namespace, "uid": "w"}})
            if isinstance(warm, Desired):
                policy_spec(warm.lmd, warm.plan, activator=False)
            first = scaler.run_cycle(lmds=bodies, deployments=deployments, pods=pods)
            steady = scaler.run_cycle(lmds=bodies, deployments=deployments, pods=pods)
            results.append({"resources": size, "queries": first.queries,
                            "first_cycle_seconds": first.seconds,
                            "steady_cycle_seconds": steady.seconds})
        client = PrometheusClient(PrometheusSettings(url=layout.prometheus_url))
        started = time.perf_counter()
        for _ in range(20):
            client.query("up", now=time.time())
        query_baseline = (time.perf_counter() - started) / 20
        for r in results:
            r["one_query_seconds"] = query_baseline
    finally:
        kubectl(layout, "delete", "namespace", namespace, "--wait=false")
    return results


# --- report ----------------------------------------------------------------------------


def report(up: dict[str, float], rec: dict[str, float], cycles: list[dict[str, float]],
           loop: dict[str, Any]) -> str:
    lines = [
        "# Operator benchmarks",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on this project's 2-core, 24 GiB "
        "machine, against the real local control plane (Kubernetes "
        f"{binaries.read_versions(Layout.default().hack)['KUBERNETES_VERSION']}) and "
        "Prometheus. Reproduce with `make bench` (or `.venv/bin/python hack/bench.py`).",
        "",
        "## Local cluster start (binaries cached)",
        "",
        "| measure | seconds | goal |",
        "|---|---|---|",
        f"| `up` from nothing to ready (etcd, apiserver, controllers, kwok nodes, Prometheus) "
        f"| {up['up_seconds']:.1f} | < 30 ({up['up_seconds'] / 30:.0%} of the goal) |",
        f"| `up` again while running (idempotent) | {up['up_again_seconds']:.2f} | |",
        "",
        f"## `kubectl apply` of {rec['count']} LanguageModelDeployments at once, until their "
        "Deployment and Service exist",
        "",
        "Each latency runs from the apiserver's watch event for the new resource to both "
        "children existing. Baseline: `kubectl apply` of as many plain Deployments, i.e. the "
        "apiserver's own time for the same number of writes on this machine.",
        "",
        "| p50 | p95 | max | baseline (all plain Deployments) | p95 / baseline |",
        "|---|---|---|---|---|",
        f"| {rec['p50']:.2f} s | {rec['p95']:.2f} s | {rec['max']:.2f} s | "
        f"{rec['baseline_plain_apply_seconds']:.2f} s | "
        f"{rec['p95'] / rec['baseline_plain_apply_seconds']:.1f}x |",
        "",
        f"{rec['completed']}/{rec['count']} completed.",
        "",
        "## One scaling cycle",
        "",
        "Queries to Prometheus per cycle and wall time of `Scaler.run_cycle`: the first cycle "
        "writes every resource's status; a steady cycle writes only what changed.",
        "",
        "| resources | queries per cycle | first cycle | steady cycle | one bare query "
        "(baseline) | steady / baseline |",
        "|---|---|---|---|---|---|",
    ]
    for c in cycles:
        lines.append(
            f"| {c['resources']} | {c['queries']} | {c['first_cycle_seconds']:.2f} s | "
            f"{c['steady_cycle_seconds']:.3f} s | {c['one_query_seconds'] * 1000:.1f} ms | "
            f"{c['steady_cycle_seconds'] / c['one_query_seconds']:.0f}x |")
    lines += ["", "Goal: queries per cycle independent of the number of resources; one cycle "
              "for 500 under 2 s."]
    if loop:
        lines += ["", "## From a metric change in Prometheus to the Deployment patch", "",
                  "| scaler period | metric visible in Prometheus -> replicas patched | "
                  "load change -> metric visible |", "|---|---|---|",
                  f"| {loop['period']:.0f} s | median {loop['prometheus_to_patch']:.1f} s, "
                  f"max {loop['prometheus_to_patch_max']:.1f} s "
                  f"({loop['prometheus_to_patch_max'] / loop['period']:.2f} periods) | "
                  f"{loop['load_to_prometheus']:.1f} s |", "",
                  f"Over {loop['trials']} load steps (goal: within one cycle). The scaler "
                  "reads Prometheus once a period, so the wait is up to one period when the "
                  "policy acts on the first reading; the policy averages in-flight load over "
                  "60 s, so a step that lifts the average past the tolerance band only on "
                  "the second reading waits one more period (the max). The load-to-"
                  "Prometheus column is the simulator's own update and the 2 s scrape."]
    return "\n".join(lines) + "\n"


def bench_metric_to_patch(layout: Layout) -> dict[str, Any]:
    """Load step through the live simulator; needs `lmscale sim serve`."""
    sys.path.insert(0, str(REPO / "hack"))
    from bench_loop import measure  # type: ignore[import-not-found]

    result: dict[str, Any] = measure(layout)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resources", type=int, default=100)
    parser.add_argument("--cycle-sizes", default="1,100,500")
    args = parser.parse_args()
    layout = Layout.default()
    was_running = all(cluster.status(layout).values())
    cluster.up(layout)
    try:
        kubectl(layout, "apply", "--server-side", "-f", str(REPO / "crds"))
        up = bench_cluster_up()
        print(json.dumps(up))
        rec = bench_reconcile(layout, args.resources)
        print(json.dumps(rec))
        cycles = bench_cycle(layout, [int(s) for s in args.cycle_sizes.split(",")])
        print(json.dumps(cycles))
        loop = bench_metric_to_patch(layout)
        print(json.dumps(loop))
    finally:
        if not was_running:
            cluster.down(layout)
    text = report(up, rec, cycles, loop)
    kept = OUT.read_text() if OUT.exists() else ""
    # The sections other scripts measure on their own (gateway, fleet, calibration) stay.
    starts = [kept.index(m) for m in KEPT_SECTIONS if m in kept]
    if starts:
        text = text.rstrip("\n") + "\n\n" + kept[min(starts):]
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
