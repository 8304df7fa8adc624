"""The local cluster's real node: pods run real processes from images built here, with
logs, exec, Services through kube-proxy, the in-cluster API, and a stop that leaves the host
as it found it."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from lmscale.devcluster import binaries, hostnet, images, node, nodeconfig
from lmscale.devcluster import cluster as devcluster
from lmscale.devcluster.layout import Layout
from tests.conftest import REPO, ClusterHandle
from tests.e2e.conftest import REAL_NODE_TOLERATION, get_json, wait_for

pytestmark = pytest.mark.cluster


SERVE_WHO = (
    "import pathlib, runpy, socket, sys; "
    "pathlib.Path('/tmp/who').write_text(socket.gethostname()); "
    "sys.argv = ['http.server', '8080', '--directory', '/tmp']; "
    "runpy.run_module('http.server', run_name='__main__')"
)


def _web_pod(name: str, image: str, *, account: str = "default") -> dict[str, Any]:
    """A Python web server on the real node, Ready once it answers."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name, "role": "web"}},
        "spec": {
            "serviceAccountName": account,
            "nodeSelector": {"lmscale.dev/node-kind": "real"},
            "tolerations": [REAL_NODE_TOLERATION],
            "terminationGracePeriodSeconds": 5,
            "containers": [{
                "name": "web", "image": image, "imagePullPolicy": "Never",
                # Serves /tmp, where /who says which pod answered.
                "command": ["python3", "-c", SERVE_WHO],
                "ports": [{"containerPort": 8080, "name": "http"}],
                "readinessProbe": {"httpGet": {"path": "/", "port": 8080},
                                   "periodSeconds": 1},
            }],
        },
    }


def _ready(cluster: ClusterHandle, namespace: str, name: str) -> bool:
    pod = get_json(cluster, "pod", name, "-n", namespace)
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in pod["status"].get("conditions", []))


def test_pods_run_on_the_real_node_with_logs_exec_and_a_service(
        cluster: ClusterHandle, namespace: str, loaded_images: dict[str, str]) -> None:
    for name in ("web-a", "web-b"):
        cluster.kubectl("apply", "-n", namespace, "-f", "-",
                        stdin=json.dumps(_web_pod(name, loaded_images["operator"])))
    cluster.kubectl("create", "service", "clusterip", "web", "--tcp=80:8080", "-n", namespace)
    cluster.kubectl("set", "selector", "service", "web", "role=web", "-n", namespace)
    for name in ("web-a", "web-b"):
        wait_for(f"{name} Ready", lambda n=name: _ready(cluster, namespace, n), timeout=60)
    pod = get_json(cluster, "pod", "web-a", "-n", namespace)
    assert pod["spec"]["nodeName"] == nodeconfig.NODE_NAME
    assert pod["status"]["podIP"].startswith("10.88.")

    exec_out = cluster.kubectl("exec", "-n", namespace, "web-a", "--", "python3", "-c",
                               "import os; print(os.getuid(), os.uname().nodename)").stdout
    assert exec_out.split() == ["65532", "web-a"]  # the image's non-root user
    logs = wait_for("a logged request", lambda: cluster.kubectl(
        "logs", "-n", namespace, "web-a").stdout)
    assert '"GET / HTTP/1.1" 200' in logs

    ip = get_json(cluster, "service", "web", "-n", namespace)["spec"]["clusterIP"]
    served: set[str] = set()

    def both_served() -> bool:
        """kube-proxy programs the Service a moment after the pods turn Ready (it refuses
        connections until then), then spreads connections over both endpoints."""
        try:
            with urllib.request.urlopen(f"http://{ip}/who", timeout=5) as response:
                served.add(response.read().decode())
        except OSError:
            pass
        return served == {"web-a", "web-b"}

    wait_for("both pods served through the Service", both_served, timeout=60, interval=0.2)
    from_pod = cluster.kubectl("exec", "-n", namespace, "web-b", "--", "python3", "-c",
                               f"import urllib.request as u; print(u.urlopen('http://{ip}/')"
                               ".status)").stdout
    assert from_pod.strip() == "200"


def test_a_pod_reaches_the_apiserver_with_its_service_account_token(
        cluster: ClusterHandle, namespace: str, loaded_images: dict[str, str]) -> None:
    cluster.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    cluster.kubectl("create", "role", "pod-reader", "--verb=list", "--resource=pods",
                    "-n", namespace)
    cluster.kubectl("create", "rolebinding", "reader", "--role=pod-reader",
                    f"--serviceaccount={namespace}:reader", "-n", namespace)
    cluster.kubectl("apply", "-n", namespace, "-f", "-",
                    stdin=json.dumps(_web_pod("client", loaded_images["operator"],
                                              account="reader")))
    wait_for("client Ready", lambda: _ready(cluster, namespace, "client"), timeout=60)
    script = ("from lmscale.k8s import resources; "
              "from lmscale.k8s.client import Kube, make_api_client; "
              "print([p['metadata']['name'] for p in Kube(make_api_client()).list("
              f"resources.PODS, namespace='{namespace}')])")
    out = cluster.kubectl("exec", "-n", namespace, "client", "--", "python3", "-c", script)
    assert "client" in out.stdout
    refused = cluster.kubectl("exec", "-n", namespace, "client", "--", "python3", "-c",
                              script.replace(f"'{namespace}'", "'kube-system'"), check=False)
    assert refused.returncode != 0 and "Forbidden" in refused.stderr + refused.stdout


def _host_traces(layout: Layout) -> dict[str, object]:
    """Everything of the node's that could outlive it on this host."""
    chains = "".join(subprocess.run([save], capture_output=True, text=True).stdout
                     for save in ("iptables-save", "ip6tables-save"))
    with open("/proc/self/mounts") as mounts:
        mount_points = [line.split()[1] for line in mounts]
    node_root = str(node.paths(layout).root)
    return {
        "processes": {n: p for n, p in node.running(layout).items() if p},
        "bridge": subprocess.run(["ip", "link", "show", nodeconfig.BRIDGE],
                                 capture_output=True).returncode == 0,
        "chains": sorted({w for w in chains.split() if w.startswith(("KUBE-", "CNI-"))}),
        "mounts": [m for m in mount_points
                   if m.startswith((node_root, "/run/containerd", "/run/netns/cni-"))],
        "paths": [str(p) for p in (*hostnet.FIXED_PATHS, node.paths(layout).root)
                  if p.exists()],
        "cgroups": [str(p) for p in Path("/sys/fs/cgroup").glob("*/kubepods")],
    }


def test_stopping_the_node_leaves_nothing_and_it_starts_again(
        cluster: ClusterHandle, real_node: Layout, namespace: str,
        loaded_images: dict[str, str]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-",
                    stdin=json.dumps(_web_pod("survivor", loaded_images["operator"])))
    wait_for("a pod running on the node", lambda: _ready(cluster, namespace, "survivor"))
    assert _host_traces(real_node)["bridge"]

    node.stop(real_node, kube_proxy=binaries.from_cache("kube-proxy", hack=real_node.hack))
    traces = _host_traces(real_node)
    assert traces == {"processes": {}, "bridge": False, "chains": [], "mounts": [],
                      "paths": [], "cgroups": []}

    bins = {name: binaries.find(name, hack=real_node.hack) for name in ("kubelet", "kube-proxy",
                                                                        "kubectl")}
    devcluster.start_real_node(real_node, bins, timeout=120,
                               preload=tuple(images.all_archives(REPO)))
    # The API still holds the old pod, which the restarted kubelet runs again.
    wait_for("the pod running again", lambda: _ready(cluster, namespace, "survivor"),
             timeout=120)


def test_cluster_up_again_leaves_the_node_running(real_node: Layout) -> None:
    """`up` is idempotent: kube-proxy exits when its configuration file changes, so a second
    `up` (every test session makes one) must not rewrite it."""
    before = node.running(real_node)
    devcluster.up(real_node)
    time.sleep(3)
    assert node.running(real_node) == before
