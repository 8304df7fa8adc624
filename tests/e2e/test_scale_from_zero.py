"""Scale from zero as a user meets it, on the real node: the chart's activator and the
model's stand-in pods run as real containers, and requests go to the model's own Service
through kube-proxy. At zero that Service's EndpointSlice points at the activator, which
holds the requests, wakes the model and forwards them once the pod is Ready; a burst beyond
its queue is answered 503 with Retry-After; idle again, the model goes back to zero and the
slice back to the activator.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from lmscale.devcluster import nodeconfig
from lmscale.devcluster.layout import Layout
from tests.conftest import ClusterHandle
from tests.e2e.conftest import (
    REAL_NODE_TOLERATION,
    chart_release,
    chart_values,
    get_json,
    service_address,
    wait_for,
)

pytestmark = pytest.mark.cluster

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
QUEUE = 4  # the activator's hold queue per model
HOLD_SECONDS = 120
COLD_START_SECONDS = 8  # the stand-in's /health stays 503 this long: the burst is held


def zero_lmd(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "lmscale.dev/v1alpha1", "kind": "LanguageModelDeployment",
        "metadata": {"name": "chat"},
        "spec": {
            "model": {"name": MODEL, "architecture": "llama-3.1-8b", "maxContextLength": 8192},
            "engine": {
                "kind": "vllm", "image": image, "tolerations": [REAL_NODE_TOLERATION],
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
                "env": [{"name": "LMSCALE_STANDIN_STARTUP_SECONDS",
                         "value": str(COLD_START_SECONDS)}],
            },
            "accelerator": {"type": "nvidia-l40s", "gpusPerReplica": 1},
            "slo": {"ttftP95Ms": 2000, "tpotP95Ms": 200, "meanPromptTokens": 64,
                    "meanOutputTokens": 64},
            "routing": {"holdTimeoutSeconds": HOLD_SECONDS},
            "scaling": {"minReplicas": 1, "maxReplicas": 1, "targetInFlightPerReplica": 8,
                        "scaleToZero": {"enabled": True, "idleSeconds": 60},
                        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}},
        },
    }


def activator_values() -> list[str]:
    sets = ["activator.enabled=true", "activator.replicas=1", f"activator.queueSize={QUEUE}",
            "activator.nodeSelector.lmscale\\.dev/node-kind=real",
            f"activator.tolerations[0].key={nodeconfig.TAINT_KEY}",
            "activator.tolerations[0].operator=Exists",
            "activator.tolerations[0].effect=NoSchedule",
            "activator.resources.requests.cpu=50m"]
    return [arg for item in sets for arg in ("--set", item)]


def completion(host: str, port: int, *, name: str | None = None
               ) -> tuple[int, dict[str, str], float]:
    """One completion through the model's Service: status, headers, seconds. `name`: the
    Host header, as a client addressing the Service by its DNS name sends it."""
    started = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=HOLD_SECONDS + 30)
    try:
        headers = {"Content-Type": "application/json", **({"Host": name} if name else {})}
        conn.request("POST", "/v1/completions", headers=headers,
                     body=json.dumps({"model": MODEL, "prompt": "Hello", "max_tokens": 8}))
        response = conn.getresponse()
        response.read()
        return response.status, dict(response.getheaders()), time.monotonic() - started
    finally:
        conn.close()


def slice_target(cluster: ClusterHandle, namespace: str) -> tuple[str, list[str]] | None:
    slices = get_json(cluster, "endpointslices", "-n", namespace, "-l",
                      "kubernetes.io/service-name=chat")["items"]
    if len(slices) != 1:
        return None
    labels = slices[0]["metadata"]["labels"]
    ips = sorted(a for e in slices[0].get("endpoints") or [] for a in e["addresses"])
    return labels.get("lmscale.dev/endpoints", ""), ips


def ready_ips(cluster: ClusterHandle, namespace: str, selector: str) -> list[str]:
    pods = get_json(cluster, "pods", "-n", namespace, "-l", selector)["items"]
    return sorted(p["status"]["podIP"] for p in pods
                  if not p["metadata"].get("deletionTimestamp") and p["status"].get("podIP")
                  and any(c["type"] == "Ready" and c["status"] == "True"
                          for c in p["status"].get("conditions", [])))


def replicas(cluster: ClusterHandle, namespace: str) -> int:
    return int(get_json(cluster, "deployment", "chat", "-n", namespace)["spec"].get("replicas")
               or 0)


def apply_zero_model(cluster: ClusterHandle, namespace: str, image: str,
                     diagnose: Callable[[], str]) -> tuple[str, int]:
    """Apply the scale-to-zero model; the address of its Service once it exists."""
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(zero_lmd(image)))
    wait_for("the model's Service", lambda: cluster.kubectl(
        "get", "service", "chat", "-n", namespace, check=False).returncode == 0, timeout=60,
        diagnose=diagnose)
    return service_address(cluster, namespace, "chat")


def idle_to_zero(cluster: ClusterHandle, namespace: str, activator_ips: list[str],
                 diagnose: Callable[[], str]) -> None:
    """Wait for the model to idle to zero, with no pod left and the slice on the activator."""
    wait_for("idle to zero", lambda: replicas(cluster, namespace) == 0, timeout=240,
             diagnose=diagnose)
    wait_for("the slice on the activator", lambda: slice_target(cluster, namespace) == (
        "activator", activator_ips), timeout=60, diagnose=diagnose)
    # a draining pod still answers: what follows is for a model with no pod at all
    wait_for("the last pod gone", lambda: not get_json(
        cluster, "pods", "-n", namespace, "-l", "lmscale.dev/deployment=chat")["items"],
        timeout=120, diagnose=diagnose)
    time.sleep(3)  # the activator's next probes find no backend


@pytest.fixture
def release(cluster: ClusterHandle, helm: Callable[..., Any], namespace: str,
            real_node: Layout, loaded_images: dict[str, str]) -> Iterator[str]:
    values = [*chart_values(real_node, namespace, replicas=1), *activator_values()]
    with chart_release(helm, namespace, values) as name:
        yield name


def test_a_model_at_zero_is_woken_by_its_first_request_and_idles_back(
        cluster: ClusterHandle, lmscale_crds: None, namespace: str, release: str,
        loaded_images: dict[str, str]) -> None:
    activator_pods = "app.kubernetes.io/component=activator"

    def diagnose() -> str:
        logs = cluster.kubectl("logs", "-n", namespace, "-l",
                               f"app.kubernetes.io/instance={release}", "--tail=200",
                               "--prefix", check=False).stdout
        return (cluster.kubectl("get", "pods,lmd,deploy,svc,endpointslices", "-n", namespace,
                                "-o", "wide", check=False).stdout + "\n" + logs)

    activator_ips = wait_for("the activator Ready", lambda: ready_ips(
        cluster, namespace, activator_pods), timeout=180, diagnose=diagnose)
    host, port = apply_zero_model(cluster, namespace, loaded_images["standin"], diagnose)
    first = wait_for("the first replica Ready", lambda: ready_ips(
        cluster, namespace, "lmscale.dev/deployment=chat"), timeout=180, diagnose=diagnose)
    wait_for("the slice on the pod", lambda: slice_target(cluster, namespace) == ("pods", first),
             timeout=30, diagnose=diagnose)

    # 1. Idle past the window: zero, and the Service's endpoints are the activator's.
    idle_to_zero(cluster, namespace, activator_ips, diagnose)

    # 2. At zero, a burst through the Service: the queue's worth is held, the model wakes,
    # they are answered; the rest get 503 with Retry-After at once.
    with ThreadPoolExecutor(QUEUE + 3) as pool:
        sent = time.monotonic()
        answers = list(pool.map(lambda _: completion(host, port), range(QUEUE + 3)))
    statuses = sorted(status for status, _, _ in answers)
    if statuses != [200] * QUEUE + [503] * 3:
        print([(status, round(seconds, 1)) for status, _, seconds in answers])
        print(diagnose())
        for ip in activator_ips:
            with contextlib.suppress(OSError):
                page = http.client.HTTPConnection(ip, 9090, timeout=5)
                page.request("GET", "/metrics")
                print(page.getresponse().read().decode())
    assert statuses == [200] * QUEUE + [503] * 3
    for status, headers, seconds in answers:
        if status == 503:
            assert headers["Retry-After"] == str(HOLD_SECONDS // 10)
            assert seconds < 5  # refused at once, not after a wait
    slowest = max(seconds for status, _, seconds in answers if status == 200)
    print(f"first tokens after {slowest:.1f} s at zero (cold start {COLD_START_SECONDS} s + "
          f"queue), {time.monotonic() - sent:.1f} s for the burst")
    assert slowest >= COLD_START_SECONDS - 1  # they really waited for the cold start
    woken = ready_ips(cluster, namespace, "lmscale.dev/deployment=chat")
    wait_for("the slice on the woken pod", lambda: slice_target(cluster, namespace) == (
        "pods", woken), timeout=30, diagnose=diagnose)
    status, _, _ = completion(host, port)  # straight to the pod now
    assert status == 200

    # 3. Idle again: back to zero, and the slice back on the activator.
    wait_for("idle back to zero", lambda: replicas(cluster, namespace) == 0, timeout=240,
             diagnose=diagnose)
    wait_for("the slice back on the activator", lambda: slice_target(cluster, namespace) == (
        "activator", activator_ips), timeout=60, diagnose=diagnose)
    logs = cluster.kubectl("logs", "-n", namespace, "-l", f"app.kubernetes.io/instance={release}",
                           "--tail=-1", check=False).stdout
    refused = [line for line in logs.splitlines() if " 403" in line or "orbidden" in line]
    assert not refused, refused[:5]


def activator_series(ip: str, series: str, model: str) -> float:
    """One of the activator's series for `model` (namespace/name), from its /metrics."""
    page = http.client.HTTPConnection(ip, 9090, timeout=5)
    try:
        page.request("GET", "/metrics")
        text = page.getresponse().read().decode()
    finally:
        page.close()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(series + "{") and f'model="{model}"' in line)


def arrivals(ip: str, model: str) -> float:
    """The activator's arrival counter for `model` (namespace/name)."""
    return activator_series(ip, "lmscale_gateway_arrivals_total", model)


def test_with_activator_always_requests_pass_the_activator_while_the_pod_is_ready(
        cluster: ClusterHandle, lmscale_crds: None, namespace: str, release: str,
        loaded_images: dict[str, str]) -> None:
    """`routing.activator: always` on the real node: the Service's slice stays on the real
    activator with the model's pod Ready, and a request through kube-proxy is forwarded to
    the pod and counted as an arrival (the scaler's leading signal)."""
    activator_ips = wait_for("the activator Ready", lambda: ready_ips(
        cluster, namespace, "app.kubernetes.io/component=activator"), timeout=180)
    resource = zero_lmd(loaded_images["standin"])
    resource["spec"]["routing"]["activator"] = "always"
    del resource["spec"]["scaling"]["scaleToZero"]
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(resource))
    wait_for("the model's pod Ready", lambda: ready_ips(
        cluster, namespace, "lmscale.dev/deployment=chat"), timeout=180)
    wait_for("the slice on the activator with the pod Ready", lambda: slice_target(
        cluster, namespace) == ("activator", activator_ips), timeout=60,
        diagnose=lambda: f"{slice_target(cluster, namespace)} vs {activator_ips}\n"
        + cluster.kubectl("get", "svc", "chat", "-n", namespace, "-o", "yaml",
                          check=False).stdout
        + cluster.kubectl("get", "endpointslices", "-n", namespace, "-o", "wide",
                          check=False).stdout
        + cluster.kubectl("logs", "-n", namespace, "-l", "app.kubernetes.io/component=operator",
                          "--tail=60", check=False).stdout)
    host, port = service_address(cluster, namespace, "chat")
    before = sum(arrivals(ip, f"{namespace}/chat") for ip in activator_ips)
    # The activator learns the model's Services within a few seconds. Addressed by the
    # ClusterIP (the Host the activator sees), which names this model where the body's
    # model name alone does not: the earlier tests' namespaces served the same one.
    wait_for("a completion through the activator",
             lambda: completion(host, port)[0] == 200, timeout=60, interval=2)
    after = sum(arrivals(ip, f"{namespace}/chat") for ip in activator_ips)
    assert after > before
    assert slice_target(cluster, namespace) == ("activator", activator_ips)


def test_requests_held_while_the_operator_is_down_are_answered_once_it_is_back(
        cluster: ClusterHandle, lmscale_crds: None, namespace: str, release: str,
        loaded_images: dict[str, str]) -> None:
    """An operator restart (here: an outage, the longest form of one) while the activator
    holds requests for a model at zero: the activator keeps them and keeps asking for the
    wake; the operator that comes back reads the request from the cluster, wakes the
    model, and every held request is answered; none times out."""
    model = f"{namespace}/chat"
    operator_pods = f"app.kubernetes.io/component=operator,app.kubernetes.io/instance={release}"

    def diagnose() -> str:
        return (cluster.kubectl("get", "pods,lmd,deploy,endpointslices", "-n", namespace,
                                "-o", "wide", check=False).stdout
                + cluster.kubectl("logs", "-n", namespace, "-l", operator_pods,
                                  "--tail=80", check=False).stdout)

    activator_ips = wait_for("the activator Ready", lambda: ready_ips(
        cluster, namespace, "app.kubernetes.io/component=activator"), timeout=180,
        diagnose=diagnose)
    host, port = apply_zero_model(cluster, namespace, loaded_images["standin"], diagnose)
    idle_to_zero(cluster, namespace, activator_ips, diagnose)

    cluster.kubectl("scale", "deployment", release, "-n", namespace, "--replicas=0")
    wait_for("the operator gone", lambda: not get_json(
        cluster, "pods", "-n", namespace, "-l", operator_pods)["items"], timeout=120,
        diagnose=diagnose)
    with ThreadPoolExecutor(QUEUE) as pool:
        answers = [pool.submit(completion, host, port) for _ in range(QUEUE)]
        wait_for("the requests held", lambda: sum(activator_series(
            ip, "lmscale_gateway_requests_waiting", model) for ip in activator_ips) == QUEUE,
            timeout=30, diagnose=diagnose)
        time.sleep(10)  # the activator repeats its wake request to nobody meanwhile
        assert replicas(cluster, namespace) == 0
        back = time.monotonic()
        cluster.kubectl("scale", "deployment", release, "-n", namespace, "--replicas=1")
        statuses = [future.result()[0] for future in answers]
    print(f"held requests answered {time.monotonic() - back:.1f} s after the operator was "
          f"asked back (its start + one cycle + cold start {COLD_START_SECONDS} s)")
    assert statuses == [200] * QUEUE, diagnose()
    for series in ("lmscale_gateway_timed_out_total", "lmscale_gateway_rejected_total"):
        assert sum(activator_series(ip, series, model) for ip in activator_ips) == 0, series
