"""Scale from zero on the local cluster (kwok pods get addresses and turn Ready).

One model with scaleToZero behind an activator, through its whole journey: its Service has
no selector and its EndpointSlice, written by lmscale, points at the model's Ready pod;
idle past the window the model goes to zero and the slice points at the activator's pods;
a request held by a real activator process (learning the model from the cluster) wakes the
model at once, far sooner than the operator's period; once the new pod is Ready the slice
points at it again. With routing.activator: always the slice stays on the activator while
pods are Ready. The activator's forwarding itself needs real containers: tests/e2e.
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, ClusterHandle, OperatorProcess, free_port
from tests.integration.test_autoscaling import LiveSimulator
from tests.support import apply, get, items, wait_for

pytestmark = pytest.mark.cluster

ACTIVATOR = "activator"
HOLD_SECONDS = 20
WAKE_PERIOD = 300  # the second operator's period: only the activator's request wakes it sooner


def activator_stand_in(namespace: str) -> list[dict[str, Any]]:
    """kwok pods and a Service that stand for the chart's activator (addresses, Ready)."""
    labels = {"app": ACTIVATOR}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": ACTIVATOR, "namespace": namespace},
         "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"tolerations": [{"operator": "Exists"}],
                                        "containers": [{"name": "gateway", "image": "gateway",
                                                        "ports": [{"name": "http",
                                                                   "containerPort": 8080}]}]}}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": ACTIVATOR, "namespace": namespace},
         "spec": {"selector": labels,
                  "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
    ]


def zero_lmd() -> dict[str, Any]:
    return {
        "apiVersion": "lmscale.dev/v1alpha1", "kind": "LanguageModelDeployment",
        "metadata": {"name": "chat"},
        "spec": {
            "model": {"name": "meta-llama/Llama-3.1-8B-Instruct",
                      "architecture": "llama-3.1-8b", "maxContextLength": 4096},
            "engine": {"kind": "vllm",
                       "podAnnotations": {"pod-ready.stage.kwok.x-k8s.io/delay": "2s"}},
            "accelerator": {"type": "nvidia-h100-80gb", "gpusPerReplica": 1},
            "slo": {"ttftP95Ms": 5000, "tpotP95Ms": 200},
            "routing": {"holdTimeoutSeconds": HOLD_SECONDS},
            "scaling": {"minReplicas": 1, "maxReplicas": 2, "targetInFlightPerReplica": 8,
                        "scaleToZero": {"enabled": True, "idleSeconds": 60},
                        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}},
        },
    }


def operator_with_activator(cluster: ClusterHandle, namespace: str, log: Path, *,
                            period: int) -> OperatorProcess:
    process = OperatorProcess(cluster, log)
    env = process.env()
    process.env = lambda: {**env, "LMSCALE_ACTIVATOR_SERVICE": f"{namespace}/{ACTIVATOR}",
                           "LMSCALE_SCALER_PERIOD_SECONDS": str(period)}  # type: ignore[method-assign]
    process.start()
    return process


def endpoint_slices(cluster: ClusterHandle, namespace: str, name: str = "chat"
                    ) -> list[dict[str, Any]]:
    return items(cluster, namespace, "endpointslices", f"kubernetes.io/service-name={name}")


def slice_target(cluster: ClusterHandle, namespace: str, name: str = "chat"
                 ) -> tuple[str, list[str], int] | None:
    """Where the model Service's only slice points: (target, addresses, port)."""
    slices = endpoint_slices(cluster, namespace, name)
    if len(slices) != 1:
        return None
    body = slices[0]
    addresses = sorted(a for e in body.get("endpoints") or [] for a in e["addresses"])
    return (body["metadata"]["labels"].get("lmscale.dev/endpoints", ""), addresses,
            int(body["ports"][0]["port"]))


def ready_ips(cluster: ClusterHandle, namespace: str, selector: str) -> list[str]:
    pods = items(cluster, namespace, "pods", selector)
    return sorted(p["status"]["podIP"] for p in pods
                  if not p["metadata"].get("deletionTimestamp") and p["status"].get("podIP")
                  and any(c["type"] == "Ready" and c["status"] == "True"
                          for c in p["status"].get("conditions") or []))


def replicas(cluster: ClusterHandle, namespace: str) -> int:
    return int(((get(cluster, namespace, "deployment", "chat") or {}).get("spec") or {})
               .get("replicas") or 0)


class Activator:
    """`lmscale gateway --discover` on loopback, against the cluster's kubeconfig."""

    def __init__(self, cluster: ClusterHandle, log: Path) -> None:
        self.port, self.admin = free_port(), free_port()
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [str(REPO / ".venv" / "bin" / "lmscale"), "gateway", "--discover",
                 "--kubeconfig", str(cluster.kubeconfig), "--discover-interval", "1",
                 "--listen", f"127.0.0.1:{self.port}",
                 "--admin-listen", f"127.0.0.1:{self.admin}"],
                stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())

    def metrics(self) -> str:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.admin, timeout=5)
            conn.request("GET", "/metrics")
            return conn.getresponse().read().decode()
        except OSError:
            return ""

    def post(self, host: str) -> tuple[int, dict[str, str], float]:
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HOLD_SECONDS + 30)
        conn.request("POST", "/v1/completions", body=json.dumps({"prompt": "hi"}),
                     headers={"Host": host, "Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status, dict(response.getheaders()), time.monotonic() - started

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def processes(cluster: ClusterHandle, tmp_path: Path, own_operators_only: None
              ) -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for process in reversed(started):
        process.stop()


def test_the_service_switches_between_pods_and_activator_and_a_held_request_wakes_the_model(
        cluster: ClusterHandle, lmscale_crds: None, namespace: str, tmp_path: Path,
        processes: list[Any]) -> None:
    if cluster.prometheus_targets is None:
        pytest.skip("the idle model's zero load comes from the live simulator")
    for manifest in activator_stand_in(namespace):
        apply(cluster, namespace, manifest)
    activator_ips = wait_for(lambda: (ips := ready_ips(cluster, namespace, "app=activator"))
                             and len(ips) == 2 and ips, timeout=60,
                             message="the activator's stand-in pods Ready")
    simulator = LiveSimulator(cluster, tmp_path / "sim.log")
    processes.append(simulator)
    operator = operator_with_activator(cluster, namespace, tmp_path / "operator.log", period=2)
    processes.append(operator)
    apply(cluster, namespace, zero_lmd())

    # Behind the activator: no selector on the model's Service, one on <model>-pods.
    service = wait_for(lambda: get(cluster, namespace, "service", "chat"), timeout=60,
                       message="the model's Service")
    assert "selector" not in service["spec"]
    pods_service = wait_for(lambda: get(cluster, namespace, "service", "chat-pods"),
                            timeout=30, message="the Service the activator forwards to")
    assert pods_service["spec"]["selector"] == {"lmscale.dev/deployment": "chat"}

    # The first replica Ready: the slice points at it, on the engine port.
    pod_ips = wait_for(lambda: ready_ips(cluster, namespace, "lmscale.dev/deployment=chat"),
                       timeout=60, message="the model's first pod Ready")
    wait_for(lambda: slice_target(cluster, namespace) == ("pods", pod_ips, 8000), timeout=30,
             message=f"the slice on the pod {pod_ips}: {slice_target(cluster, namespace)}")

    # Idle past the window: zero replicas, and the slice points at the activator.
    wait_for(lambda: replicas(cluster, namespace) == 0, timeout=180,
             message=f"idle to zero; operator log:\n{operator.log_tail()}")
    wait_for(lambda: slice_target(cluster, namespace) == ("activator", activator_ips, 8080),
             timeout=30, message=f"the slice on the activator: {slice_target(cluster, namespace)}")

    # A restarted operator with a long period: only the activator's request can wake it soon.
    operator.stop()
    operator = operator_with_activator(cluster, namespace, tmp_path / "operator2.log",
                                       period=WAKE_PERIOD)
    processes.append(operator)
    wait_for(lambda: "scaling loop started" in operator.log_tail(200), timeout=90,
             message="the second operator's scaling loop")
    time.sleep(3)  # its first cycle (at start) has run: the model stays at zero
    assert replicas(cluster, namespace) == 0

    gateway = Activator(cluster, tmp_path / "activator.log")
    processes.append(gateway)
    model = f'model="{namespace}/chat"'
    wait_for(lambda: model in gateway.metrics(), timeout=30,
             message="the activator learned the model from its <model>-pods Service")
    with ThreadPoolExecutor(1) as pool:
        sent = time.monotonic()
        answer = pool.submit(gateway.post, f"chat.{namespace}.svc")
        wait_for(lambda: replicas(cluster, namespace) == 1, timeout=15,
                 message=f"woken by the held request; operator log:\n{operator.log_tail()}")
        woke_after = time.monotonic() - sent
        annotations = get(cluster, namespace, "lmd", "chat")["metadata"]["annotations"]
        assert "lmscale.dev/wake-requested-at" in annotations
        new_ips = wait_for(lambda: ready_ips(cluster, namespace, "lmscale.dev/deployment=chat"),
                           timeout=60, message="the woken pod Ready")
        wait_for(lambda: slice_target(cluster, namespace) == ("pods", new_ips, 8000),
                 timeout=30, message="the slice on the woken pod")
        # kwok pods answer nothing: the held request meets the model's own hold timeout
        status, headers, waited = answer.result(timeout=HOLD_SECONDS + 30)
    assert status == 503 and headers["Retry-After"] == "2"
    assert HOLD_SECONDS - 1 <= waited < HOLD_SECONDS + 10
    print(f"woke 0 -> 1 after {woke_after:.1f} s (period {WAKE_PERIOD} s)")
    assert woke_after < 10
    assert len(endpoint_slices(cluster, namespace)) == 1  # lmscale's only


def test_with_activator_always_the_slice_stays_on_the_activator_while_pods_are_ready(
        cluster: ClusterHandle, lmscale_crds: None, namespace: str, tmp_path: Path,
        processes: list[Any]) -> None:
    """routing.activator: always keeps every request on the arrival counter; the default
    (whenScaledToZero) hands the slice to the Ready pods."""
    for manifest in activator_stand_in(namespace):
        apply(cluster, namespace, manifest)
    activator_ips = wait_for(lambda: (ips := ready_ips(cluster, namespace, "app=activator"))
                             and len(ips) == 2 and ips, timeout=60,
                             message="the activator's stand-in pods Ready")
    processes.append(operator_with_activator(cluster, namespace, tmp_path / "operator.log",
                                             period=2))
    always = zero_lmd()
    always["spec"]["routing"]["activator"] = "always"
    # a model that never scales to zero is fronted too, with always
    plain = zero_lmd()
    plain["metadata"]["name"] = "plain"
    plain["spec"]["routing"]["activator"] = "always"
    plain["spec"]["scaling"]["scaleToZero"] = {"enabled": False}
    apply(cluster, namespace, always)
    apply(cluster, namespace, plain)

    def pods_ready(name: str) -> list[str]:
        return ready_ips(cluster, namespace, f"lmscale.dev/deployment={name}")

    def on_activator(name: str) -> bool:
        return slice_target(cluster, namespace, name) == ("activator", activator_ips, 8080)

    for name in ("chat", "plain"):
        wait_for(functools.partial(pods_ready, name), timeout=60,
                 message=f"{name}'s pod Ready")
        wait_for(functools.partial(on_activator, name), timeout=30,
                 message=f"{name}'s slice on the activator")
        service = get(cluster, namespace, "service", name)
        assert service is not None and "selector" not in service["spec"]
        pods_service = get(cluster, namespace, "service", f"{name}-pods")
        assert pods_service is not None
        assert pods_service["spec"]["selector"] == {"lmscale.dev/deployment": name}
    time.sleep(6)  # three scaling cycles, each one a repair pass of the slices
    assert slice_target(cluster, namespace) == ("activator", activator_ips, 8080)

    # The default mode: the slice follows the Ready pod, on the engine port.
    del always["spec"]["routing"]["activator"]
    apply(cluster, namespace, always)
    pod_ips = ready_ips(cluster, namespace, "lmscale.dev/deployment=chat")
    wait_for(lambda: slice_target(cluster, namespace) == ("pods", pod_ips, 8000), timeout=30,
             message=f"the slice on the pod {pod_ips}: {slice_target(cluster, namespace)}")
    assert len(endpoint_slices(cluster, namespace)) == 1
