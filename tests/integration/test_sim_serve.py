"""`lmscale sim serve` on the local cluster: its series reach the real Prometheus and the
operator's own MetricsReader reads them for the deployment.

The real operator creates the Deployment; kwok makes its pods Ready (after 1 s, from the
pod annotation the template passes through); the simulator, a subprocess, finds them,
registers itself as a scrape target, and a PUT sets the load.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prometheus_client import CollectorRegistry

from lmscale.metrics import promql
from lmscale.metrics.client import PrometheusClient
from lmscale.metrics.reader import MetricsReader
from lmscale.metrics.results import DeploymentMetrics, Target
from lmscale.operator_metrics import OperatorMetrics
from lmscale.settings import PrometheusSettings
from tests.conftest import REPO, ClusterHandle, OperatorProcess, free_port
from tests.support import apply, items, wait_for

pytestmark = pytest.mark.cluster

NAME = "chat"
T = TypeVar("T")


def lmd() -> dict[str, Any]:
    """Two replicas, not autoscaled (the test sets the load, not the replica count)."""
    return {
        "apiVersion": "lmscale.dev/v1alpha1", "kind": "LanguageModelDeployment",
        "metadata": {"name": NAME},
        "spec": {
            "model": {"name": "meta-llama/Llama-3.1-8B-Instruct",
                      "architecture": "llama-3.1-8b", "maxContextLength": 8192},
            "engine": {"kind": "vllm",
                       "podAnnotations": {"pod-ready.stage.kwok.x-k8s.io/delay": "1s"}},
            "accelerator": {"type": "nvidia-h100-80gb", "gpusPerReplica": "auto"},
            "scaling": {"enabled": False},
            "replicas": 2,
        },
    }


class SimServe:
    """The simulator as a subprocess, and its HTTP API."""

    def __init__(self, cluster: ClusterHandle, namespace: str, log: Path) -> None:
        assert cluster.prometheus_targets is not None
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.target = cluster.prometheus_targets / f"sim-serve-{self.port}.json"
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [str(REPO / ".venv" / "bin" / "lmscale"), "sim", "serve",
                 "--kubeconfig", str(cluster.kubeconfig), "--listen", f"127.0.0.1:{self.port}",
                 "--register-targets", str(cluster.prometheus_targets), "--namespace",
                 namespace, "--poll-seconds", "1", "--load", "constant:0"],
                stdout=out, stderr=subprocess.STDOUT,
            )

    def call(self, method: str, path: str, body: object = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def state(self) -> dict[str, Any] | None:
        try:
            return dict(self.call("GET", "/state")["deployments"])
        except OSError:
            return None  # not listening yet

    def stop(self) -> int:
        self.process.terminate()
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@pytest.fixture
def sim_serve(cluster: ClusterHandle, namespace: str, tmp_path: Path) -> Iterator[SimServe]:
    if cluster.prometheus_targets is None:
        pytest.skip("needs the local cluster's Prometheus targets folder (not a KUBECONFIG run)")
    sim = SimServe(cluster, namespace, tmp_path / "sim-serve.log")
    yield sim
    sim.stop()


def prometheus(cluster: ClusterHandle, query: str) -> list[dict[str, Any]]:
    url = f"{cluster.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as response:
        return list(json.loads(response.read())["data"]["result"])


def by_pod(cluster: ClusterHandle, query: str) -> dict[str, tuple[dict[str, str], float]]:
    return {r["metric"]["pod"]: (r["metric"], float(r["value"][1]))
            for r in prometheus(cluster, query)}


def until(probe: Callable[[], T | None], *, timeout: float, message: str) -> T:
    """`wait_for`, typed: the first answer that is not None (or falsy)."""
    found = wait_for(probe, timeout=timeout, message=message)
    assert found is not None
    return found


def ready_pods(cluster: ClusterHandle, namespace: str, count: int) -> list[str] | None:
    """The Ready pods' names, once there are `count` of them."""
    found = items(cluster, namespace, "pods", f"lmscale.dev/deployment={NAME}")
    names = sorted(p["metadata"]["name"] for p in found if any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in p["status"].get("conditions") or []))
    return names if len(names) == count else None


def every_pod(cluster: ClusterHandle, query: str, pods: list[str], *, above: float
              ) -> dict[str, tuple[dict[str, str], float]] | None:
    """The series of `query` by pod, once every pod has one above `above`."""
    found = by_pod(cluster, query)
    ok = sorted(found) == pods and all(v > above for _, v in found.values())
    return found if ok else None


def test_prometheus_and_the_operator_read_the_simulated_pods_under_load(
    cluster: ClusterHandle, operator: OperatorProcess, namespace: str, sim_serve: SimServe
) -> None:
    apply(cluster, namespace, lmd())
    pods = until(lambda: ready_pods(cluster, namespace, 2), timeout=90, message="2 pods Ready")
    key = f"{namespace}/{NAME}"
    wait_for(lambda: (s := sim_serve.state()) and s.get(key, {}).get("readyPods") == pods,
             timeout=30, message=f"sim serve plays both pods ({sim_serve.log.read_text()})")
    assert json.loads(sim_serve.target.read_text())[0]["targets"] == [
        f"127.0.0.1:{sim_serve.port}"]

    # Far more than two replicas hold: 20 rps each of 4,000 tokens fill the KV caches.
    answer = sim_serve.call("PUT", f"/load/{namespace}/{NAME}",
                            {"rps": 40, "promptTokens": 2000, "outputTokens": 2000})
    assert answer["load"] == "constant:40"

    selector = f'{{namespace="{namespace}"}}'
    waiting = until(
        lambda: every_pod(cluster, f"vllm:num_requests_waiting{selector}", pods, above=0),
        timeout=60, message="Prometheus has waiting > 0 for both pods")
    for pod, (labels, _) in waiting.items():
        assert labels["lmscale_dev_deployment"] == NAME and labels["namespace"] == namespace
        assert labels["model_name"] == "meta-llama/Llama-3.1-8B-Instruct"
        assert labels["job"] == "lmscale" and pod in pods
    assert every_pod(cluster, f"vllm:num_requests_running{selector}", pods, above=0)
    usage = by_pod(cluster, f"vllm:kv_cache_usage_perc{selector}")
    assert sorted(usage) == pods and all(0 < v <= 1 for _, v in usage.values())
    gpus = until(
        lambda: every_pod(cluster, f"DCGM_FI_DEV_GPU_UTIL{selector}", pods, above=90),
        timeout=30, message="GPU utilisation near 100 under load")
    assert all("lmscale_dev_deployment" not in labels for labels, _ in gpus.values())

    reader = MetricsReader(
        PrometheusClient(PrometheusSettings(url=cluster.prometheus_url)),
        promql.QueryContext(max_age_seconds=15),
        metrics=OperatorMetrics(CollectorRegistry()),
    )

    def complete() -> DeploymentMetrics | None:
        m = reader.read([Target(namespace, NAME, "vllm")], now=time.time()).get(namespace, NAME)
        # the queue comes and goes with the arrivals: a reading of it, not one instant's 0
        return m if None not in (m.waiting, m.running, m.ttft_p95_seconds) \
            and (m.waiting or 0) > 0 else None

    try:
        metrics = until(complete, timeout=60,
                           message="the operator's reader sees waiting, running and TTFT")
    finally:
        reader.close()
    assert metrics.waiting is not None and metrics.waiting > 0
    assert metrics.running is not None and metrics.running > 0
    assert metrics.ttft_p95_seconds is not None and metrics.ttft_p95_seconds > 0
    assert metrics.gpu_utilization is not None and metrics.gpu_utilization > 0.9
    assert metrics.reporting_replicas == 2

    assert sim_serve.stop() == 0
    assert not sim_serve.target.exists()  # unregistered on exit
