"""From a metric change visible in Prometheus to the Deployment patch (part of `make bench`).

Runs the operator and the live simulator on the local cluster, steps one model's load from
zero, and times (1) the load change until Prometheus answers the operator's own query with
the new value, and (2) that moment until the scaler's replicas patch lands. Goal: (2) within
one scaler period.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from lmscale.devcluster.cluster import kubectl
from lmscale.devcluster.layout import Layout
from lmscale.metrics.reader import MetricsReader
from lmscale.metrics.results import Target
from lmscale.settings import OperatorSettings

REPO = Path(__file__).resolve().parent.parent
PERIOD = 10.0
TRIALS = 3


def _lmd(name: str) -> dict[str, Any]:
    return {"apiVersion": "lmscale.dev/v1alpha1", "kind": "LanguageModelDeployment",
            "metadata": {"name": name},
            "spec": {"model": {"name": "m", "architecture": "llama-3.1-8b",
                               "maxContextLength": 4096},
                     "engine": {"podAnnotations": {"pod-ready.stage.kwok.x-k8s.io/delay": "2s"}},
                     "accelerator": {"type": "nvidia-h100-80gb", "gpusPerReplica": 1},
                     "slo": {"ttftP95Ms": 5000, "tpotP95Ms": 200},
                     "scaling": {"minReplicas": 1, "maxReplicas": 8,
                                 "targetInFlightPerReplica": 8}}}


def _replicas(layout: Layout, namespace: str, name: str) -> int:
    out = kubectl(layout, "get", "deployment", name, "-n", namespace, "-o",
                   "jsonpath={.spec.replicas}")
    return int(out or 0)


def _put_load(url: str, namespace: str, name: str, rps: float) -> None:
    body = json.dumps({"rps": rps, "promptTokens": 512, "outputTokens": 128}).encode()
    request = urllib.request.Request(f"{url}/load/{namespace}/{name}", data=body, method="PUT")
    urllib.request.urlopen(request, timeout=5).close()


def measure(layout: Layout) -> dict[str, Any]:
    namespace = f"loop-{int(time.time())}"
    kubectl(layout, "create", "namespace", namespace)
    env = {**os.environ, "KUBECONFIG": str(layout.kubeconfig),
           "LMSCALE_PROMETHEUS_URL": layout.prometheus_url,
           "LMSCALE_SCALER_PERIOD_SECONDS": str(PERIOD), "LMSCALE_METRICS_PORT": "18091"}
    lmscale = str(REPO / ".venv" / "bin" / "lmscale")
    operator = subprocess.Popen([lmscale, "run", "--standalone", "-n", namespace], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sim = subprocess.Popen([lmscale, "sim", "serve", "--kubeconfig", str(layout.kubeconfig),
                            "--listen", "127.0.0.1:9411", "--register-targets",
                            str(layout.prometheus_targets), "--namespace", namespace,
                            "--poll-seconds", "1"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    reader = MetricsReader.from_settings(OperatorSettings.from_env(
        {"LMSCALE_PROMETHEUS_URL": layout.prometheus_url}))
    to_prometheus: list[float] = []
    to_patch: list[float] = []
    try:
        for trial in range(TRIALS):
            name = f"m{trial}"
            kubectl(layout, "apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(_lmd(name)))
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                ready = kubectl(layout, "get", "lmd", name, "-n", namespace, "-o",
                                 "jsonpath={.status.readyReplicas}")
                if ready == "1":
                    break
                time.sleep(0.5)
            time.sleep(PERIOD)  # a quiet cycle first
            stepped = time.monotonic()
            _put_load("http://127.0.0.1:9411", namespace, name, 30)
            target = Target(namespace, name, "vllm")
            visible = None
            while time.monotonic() - stepped < 120:
                now = time.time()
                values = reader.read([target], now=now).get(namespace, name)
                if visible is None and (values.waiting or 0) + (values.running or 0) > 8 * 1.1:
                    visible = time.monotonic()
                    to_prometheus.append(visible - stepped)
                if visible is not None and _replicas(layout, namespace, name) > 1:
                    to_patch.append(time.monotonic() - visible)
                    break
                time.sleep(0.2)
            _put_load("http://127.0.0.1:9411", namespace, name, 0)
            kubectl(layout, "delete", "lmd", name, "-n", namespace)
    finally:
        for process in (sim, operator):
            process.terminate()
            process.wait(timeout=30)
        kubectl(layout, "delete", "namespace", namespace, "--wait=false")
    return {"period": PERIOD, "trials": len(to_patch),
            "prometheus_to_patch": statistics.median(to_patch) if to_patch else float("nan"),
            "prometheus_to_patch_max": max(to_patch, default=float("nan")),
            "load_to_prometheus": statistics.median(to_prometheus) if to_prometheus
            else float("nan")}
