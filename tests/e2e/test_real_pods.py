"""The product as a user meets it, on the local cluster's real node: the chart runs the
operator image with its own ServiceAccount token, model servers run as real containers of
the engine stand-in (each engine's real command line), requests go through Services and
kube-proxy, load scales the fleet up and down without failing a request, a deleted operator
pod is replaced by its standby, and uninstalling leaves nothing that blocks the CRD's deletion.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lmscale.devcluster import nodeconfig
from lmscale.devcluster.layout import Layout
from tests.conftest import ClusterHandle, _install_crds
from tests.e2e.conftest import (
    REAL_NODE_TOLERATION,
    chart_release,
    chart_values,
    get_json,
    load,
    service_address,
    stream_completion,
    wait_for,
)

pytestmark = pytest.mark.cluster

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
CRD = "languagemodeldeployments.lmscale.dev"


def lmd(name: str, kind: str, image: str, *, max_replicas: int) -> dict[str, Any]:
    """One replica per L40S of the real node; a small in-flight target so that a few
    streams are enough to need a second replica."""
    return {
        "apiVersion": "lmscale.dev/v1alpha1",
        "kind": "LanguageModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"name": MODEL, "architecture": "llama-3.1-8b", "maxContextLength": 8192},
            "engine": {
                "kind": kind, "image": image, "tolerations": [REAL_NODE_TOLERATION],
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
            },
            "accelerator": {"type": "nvidia-l40s", "gpusPerReplica": 1},
            "slo": {"ttftP95Ms": 2000, "tpotP95Ms": 200, "meanPromptTokens": 64,
                    "meanOutputTokens": 64},
            "scaling": {
                "minReplicas": 1, "maxReplicas": max_replicas, "targetInFlightPerReplica": 4,
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 5}},
            },
        },
    }


def _condition(cluster: ClusterHandle, namespace: str, name: str, kind: str) -> str | None:
    status = get_json(cluster, "lmd", name, "-n", namespace).get("status") or {}
    for condition in status.get("conditions", []):
        if condition["type"] == kind:
            return str(condition["status"])
    return None


def _pods(cluster: ClusterHandle, namespace: str, selector: str) -> list[dict[str, Any]]:
    return list(get_json(cluster, "pods", "-n", namespace, "-l", selector)["items"])


def _running_on_real_node(pod: dict[str, Any]) -> bool:
    ready = any(c["type"] == "Ready" and c["status"] == "True"
                for c in pod["status"].get("conditions", []))
    return (pod["spec"].get("nodeName") == nodeconfig.NODE_NAME
            and pod["status"].get("phase") == "Running" and ready)


def _replicas(cluster: ClusterHandle, namespace: str, name: str) -> tuple[int, int]:
    spec_status = get_json(cluster, "deployment", name, "-n", namespace)
    return (int(spec_status["spec"].get("replicas", 0)),
            int(spec_status["status"].get("readyReplicas", 0)))


def _completion(host: str, port: int) -> dict[str, Any]:
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        conn.request("POST", "/v1/completions", headers={"Content-Type": "application/json"},
                     body=json.dumps({"model": MODEL, "prompt": "Hello", "max_tokens": 8}))
        response = conn.getresponse()
        assert response.status == 200, response.read()
        return dict(json.loads(response.read()))
    finally:
        conn.close()


def _operator_logs(cluster: ClusterHandle, namespace: str, release: str) -> str:
    return cluster.kubectl("logs", "-n", namespace, "-l",
                           f"app.kubernetes.io/instance={release}", "--tail=-1",
                           "--prefix", check=False).stdout


def _lease_holder(cluster: ClusterHandle, namespace: str) -> str | None:
    leases = get_json(cluster, "leases", "-n", namespace)["items"]
    holders = [lease["spec"].get("holderIdentity") for lease in leases]
    return next((h for h in holders if h), None)


@pytest.fixture
def release(cluster: ClusterHandle, helm: Callable[..., Any], namespace: str,
            real_node: Layout, loaded_images: dict[str, str]) -> Iterator[str]:
    with chart_release(helm, namespace, [*chart_values(real_node, namespace)]) as name:
        yield name


def test_chart_runs_real_model_servers_scales_them_and_uninstalls_cleanly(
        cluster: ClusterHandle, helm: Callable[..., Any], lmscale_crds: None, namespace: str,
        release: str, loaded_images: dict[str, str]) -> None:
    operator_pods = f"app.kubernetes.io/instance={release}"

    def diagnose() -> str:
        return (cluster.kubectl("get", "pods,lmd,deploy,lease", "-n", namespace, "-o", "wide",
                                check=False).stdout
                + "\n" + _operator_logs(cluster, namespace, release)[-4000:])

    # 1. The operator pods start from the local image, on the real node.
    wait_for("two Ready operator pods", lambda: sum(
        _running_on_real_node(p) for p in _pods(cluster, namespace, operator_pods)) == 2,
        diagnose=diagnose)

    # 2. One model per engine kind reaches Ready with a real container running its command.
    kinds = {"chat-vllm": ("vllm", 2), "chat-tgi": ("tgi", 1), "chat-sglang": ("sglang", 1)}
    for name, (kind, max_replicas) in kinds.items():
        doc = lmd(name, kind, loaded_images["standin"], max_replicas=max_replicas)
        cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(doc))
    for name in kinds:
        wait_for(f"{name} Ready=True", lambda n=name: _condition(
            cluster, namespace, n, "Ready") == "True", timeout=180, diagnose=diagnose)
        pods = _pods(cluster, namespace, f"lmscale.dev/deployment={name}")
        assert len(pods) == 1 and _running_on_real_node(pods[0]), diagnose()

    # 3. Requests through each model's Service (ClusterIP, kube-proxy) are answered.
    for name in kinds:
        host, port = service_address(cluster, namespace, name)
        answer = _completion(host, port)
        assert answer["choices"][0]["text"], answer
        chunks = stream_completion(host, port, MODEL, max_tokens=16)
        assert len(chunks) >= 16, f"{name}: {len(chunks)} chunks"

    # 4. Load needs two replicas of the vLLM model: the operator scales up.
    host, port = service_address(cluster, namespace, "chat-vllm")
    with load(host, port, MODEL, streams=12, max_tokens=200) as busy:
        wait_for("chat-vllm at 2 ready replicas", lambda: _replicas(
            cluster, namespace, "chat-vllm") == (2, 2), timeout=180, diagnose=diagnose)
    assert busy.failed == 0, busy.errors[:5]
    assert busy.ok > 0

    # 5. Light load: back to one replica, and no request in flight during it fails.
    with load(host, port, MODEL, streams=2, max_tokens=100) as light:
        wait_for("chat-vllm back to 1 replica", lambda: _replicas(
            cluster, namespace, "chat-vllm")[0] == 1, timeout=180, diagnose=diagnose)
        wait_for("the removed replica's pod gone", lambda: len(_pods(
            cluster, namespace, "lmscale.dev/deployment=chat-vllm")) == 1, timeout=120,
            diagnose=diagnose)
    assert light.failed == 0, light.errors[:5]
    assert light.ok > 0

    # 6. The leading operator pod deleted: the standby takes over, the fleet is kept.
    leader = wait_for("a Lease holder", lambda: _lease_holder(cluster, namespace))
    leader_pod = next(p["metadata"]["name"] for p in _pods(cluster, namespace, operator_pods)
                      if p["metadata"]["name"] in leader)
    cluster.kubectl("delete", "pod", leader_pod, "-n", namespace, "--wait=false")
    wait_for("another Lease holder", lambda: (h := _lease_holder(cluster, namespace))
             and leader_pod not in h, timeout=90, diagnose=diagnose)
    time.sleep(10)  # a few scaler cycles of the new leader
    assert _replicas(cluster, namespace, "chat-vllm") == (1, 1), diagnose()
    assert _condition(cluster, namespace, "chat-vllm", "Ready") == "True", diagnose()

    # 7. Nothing the operator asked for was refused (it ran with the chart's token only).
    logs = _operator_logs(cluster, namespace, release)
    refused = [line for line in logs.splitlines() if "HTTP 403" in line or "orbidden" in line]
    assert not refused, refused[:5]

    # 8. Uninstall, then the CRD deletes completely (no finalizer is left behind).
    for name in kinds:
        cluster.kubectl("delete", "lmd", name, "-n", namespace, "--timeout=60s")
    helm("uninstall", release, "--namespace", namespace, "--wait", "--timeout", "90s")
    try:
        cluster.kubectl("delete", "crd", CRD, "--timeout=60s")
        gone = cluster.kubectl("get", "crd", CRD, check=False)
        assert gone.returncode != 0 and "NotFound" in gone.stderr, gone.stdout
    finally:
        _install_crds(cluster)  # the rest of the session still needs it
