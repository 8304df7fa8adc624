"""The local control plane acts like a GPU cluster: scheduling, capacity, start-up, Prometheus."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from typing import Any

import pytest

from tests.conftest import ClusterHandle
from tests.support import apply, events, wait_for

pytestmark = pytest.mark.cluster

H100 = "NVIDIA-H100-80GB-HBM3"


def gpu_deployment(name: str, *, product: str, gpus: int, replicas: int = 1,
                   startup: str = "2s") -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels,
                             "annotations": {"pod-ready.stage.kwok.x-k8s.io/delay": startup}},
                "spec": {
                    "nodeSelector": {"nvidia.com/gpu.product": product},
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists",
                                     "effect": "NoSchedule"}],
                    "containers": [{
                        "name": "server", "image": "vllm/vllm-openai:v0.11.0",
                        "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                    }],
                },
            },
        },
    }


def pods(cluster: ClusterHandle, namespace: str, app: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "pods", "-n", namespace, "-l", f"app={app}", "-o", "json").stdout
    return list(json.loads(out)["items"])


def node_products(cluster: ClusterHandle) -> dict[str, str]:
    nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    return {n["metadata"]["name"]: n["metadata"]["labels"].get("nvidia.com/gpu.product", "")
            for n in nodes}


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def scheduling_events(cluster: ClusterHandle, namespace: str) -> list[dict[str, Any]]:
    return events(cluster, namespace, reason="FailedScheduling")


def test_built_apiserver_reports_its_release_version(cluster: ClusterHandle) -> None:
    from lmscale.devcluster import binaries
    from lmscale.devcluster.layout import Layout

    hack = Layout.default().hack
    pinned = binaries.read_versions(hack)["KUBERNETES_VERSION"]
    apiserver = binaries.find("kube-apiserver", hack=hack)
    out = subprocess.run([str(apiserver), "--version"], capture_output=True, text=True).stdout
    assert out.strip() == f"Kubernetes {pinned}"
    assert pinned.startswith("v1.36.")


def test_gpu_pods_land_only_on_the_requested_gpu_type_and_become_ready(
    cluster: ClusterHandle, namespace: str
) -> None:
    apply(cluster, namespace, gpu_deployment("h100", product=H100, gpus=2, replicas=3))
    ready = wait_for(
        lambda: (p := pods(cluster, namespace, "h100")) and len(p) == 3
        and all(is_ready(x) for x in p) and p,
        timeout=60, message="3 pods Running and Ready on H100 nodes",
    )
    products = node_products(cluster)
    assert {products[p["spec"]["nodeName"]] for p in ready} == {H100}
    assert all(p["status"]["phase"] == "Running" for p in ready)


def test_startup_delay_is_honoured_per_pod(cluster: ClusterHandle, namespace: str) -> None:
    apply(cluster, namespace, gpu_deployment("slow", product=H100, gpus=1, startup="8s"))
    pod = wait_for(lambda: (p := pods(cluster, namespace, "slow")) and p[0].get("spec", {}).get(
        "nodeName") and p[0], timeout=30, message="pod scheduled")
    scheduled = time.monotonic()
    assert not is_ready(pod)
    wait_for(lambda: all(is_ready(p) for p in pods(cluster, namespace, "slow")),
             timeout=40, message="pod Ready")
    assert time.monotonic() - scheduled >= 6.0  # the 8 s annotation, less polling slack


def test_gpu_type_no_node_has_stays_pending_with_failed_scheduling(
    cluster: ClusterHandle, namespace: str
) -> None:
    apply(cluster, namespace, gpu_deployment("b200", product="NVIDIA-B200", gpus=1))
    events = wait_for(lambda: scheduling_events(cluster, namespace), timeout=60,
                      message="a FailedScheduling event")
    assert "didn't match Pod's node affinity/selector" in events[0]["message"]
    assert all(p["status"]["phase"] == "Pending" for p in pods(cluster, namespace, "b200"))


def test_gpu_capacity_is_honoured(cluster: ClusterHandle, namespace: str) -> None:
    # Every H100 node has 8 GPUs: a pod asking for 9 can never be placed.
    apply(cluster, namespace, gpu_deployment("too-big", product=H100, gpus=9))
    events = wait_for(lambda: scheduling_events(cluster, namespace), timeout=60,
                      message="a FailedScheduling event")
    assert "Insufficient nvidia.com/gpu" in events[0]["message"]
    time.sleep(2)
    assert all(not p["spec"].get("nodeName") for p in pods(cluster, namespace, "too-big"))


def test_prometheus_answers_up_for_its_own_targets(cluster: ClusterHandle) -> None:
    def up_jobs() -> dict[str, str]:
        query = urllib.parse.urlencode({"query": "up"})
        with urllib.request.urlopen(f"{cluster.prometheus_url}/api/v1/query?{query}") as r:
            result = json.load(r)["data"]["result"]
        return {s["metric"]["job"]: s["value"][1] for s in result}

    jobs = wait_for(lambda: (j := up_jobs()) and {"prometheus", "kwok"} <= j.keys() and j,
                    timeout=30, message="up series for prometheus and kwok")
    assert jobs["prometheus"] == "1"
    assert jobs["kwok"] == "1"
