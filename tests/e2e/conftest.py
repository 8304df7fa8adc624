"""Fixtures for the real node: images loaded into its containerd, the chart installed from
them, and a load generator that talks to Services through kube-proxy."""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from lmscale.devcluster import images, node, nodeconfig
from lmscale.devcluster.layout import Layout
from tests.conftest import REPO, ClusterHandle

CHART = REPO / "charts" / "lmscale"
REAL_NODE_TOLERATION = {"key": nodeconfig.TAINT_KEY, "operator": "Exists",
                        "effect": "NoSchedule"}


def wait_for(what: str, check: Callable[[], Any], *, timeout: float = 120.0,
             interval: float = 1.0, diagnose: Callable[[], str] | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(interval)
    detail = f"\n{diagnose()}" if diagnose else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")


def get_json(cluster: ClusterHandle, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


@pytest.fixture(scope="session")
def real_node(cluster: ClusterHandle) -> Layout:
    """The local cluster's real node, Ready; a cluster without one fails these tests."""
    layout = Layout.default()
    status = get_json(cluster, "nodes", "-l", "lmscale.dev/node-kind=real")["items"]
    ready = [n for n in status for c in n["status"].get("conditions", [])
             if c["type"] == "Ready" and c["status"] == "True"]
    if not ready:
        pytest.fail("no real node is Ready: the end-to-end tests need `lmscale cluster up` "
                    "as root at the default ports (see docs/install.md)", pytrace=False)
    return layout


@pytest.fixture(scope="session")
def loaded_images(real_node: Layout) -> dict[str, str]:
    """The operator and engine stand-in images, built (or cached) and imported."""
    archives = images.all_archives(REPO)
    images.load(node.paths(real_node).containerd_socket, archives)
    return {"operator": images.OPERATOR_IMAGE, "standin": images.STANDIN_IMAGE}


def in_cluster_prometheus(layout: Layout) -> str:
    return node.in_cluster_url(layout.ports.prometheus)


def chart_values(layout: Layout, namespace: str, *, replicas: int = 2) -> list[str]:
    """helm --set arguments: the local image, on the real node, reading the local Prometheus."""
    repository, tag = images.OPERATOR_IMAGE.rsplit(":", 1)
    sets = [
        f"image.repository={repository}", f"image.tag={tag}", "image.pullPolicy=Never",
        f"replicaCount={replicas}", f"watchNamespaces={{{namespace}}}",
        f"prometheus.url={in_cluster_prometheus(layout)}",
        "scaler.periodSeconds=3", "logging.format=text",
        "nodeSelector.lmscale\\.dev/node-kind=real",
        f"tolerations[0].key={nodeconfig.TAINT_KEY}", "tolerations[0].operator=Exists",
        "tolerations[0].effect=NoSchedule",
        "resources.requests.cpu=50m", "resources.requests.memory=128Mi",
    ]
    return [arg for item in sets for arg in ("--set", item)]


# --- load through a Service -------------------------------------------------------------------


@dataclass
class LoadCount:
    ok: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, error: str | None) -> None:
        with self.lock:
            if error is None:
                self.ok += 1
            else:
                self.failed += 1
                self.errors.append(error)


def stream_completion(host: str, port: int, model: str, *, max_tokens: int,
                      timeout: float = 120.0) -> list[dict[str, Any]]:
    """One streamed chat completion; the parsed chunks, or an exception."""
    body = json.dumps({"model": model, "stream": True, "max_tokens": max_tokens,
                       "messages": [{"role": "user", "content": "Say something."}]})
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", "/v1/chat/completions", body=body,
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {response.read()[:200]!r}")
        chunks, done = [], False
        for raw in response:
            line = raw.decode().strip()
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                done = True
                break
            chunks.append(json.loads(line[len("data: "):]))
        if not done:
            raise RuntimeError(f"stream ended without [DONE] after {len(chunks)} chunks")
        return chunks
    finally:
        conn.close()


@contextlib.contextmanager
def load(host: str, port: int, model: str, *, streams: int, max_tokens: int
         ) -> Iterator[LoadCount]:
    """`streams` clients, each sending one streamed request after another until stopped."""
    count, stop = LoadCount(), threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                stream_completion(host, port, model, max_tokens=max_tokens)
                count.record(None)
            except Exception as error:  # noqa: BLE001 - every failure is counted
                count.record(f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=client, daemon=True) for _ in range(streams)]
    for t in threads:
        t.start()
    try:
        yield count
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=180)


@contextlib.contextmanager
def chart_release(helm: Callable[..., Any], namespace: str, values: list[str]) -> Iterator[str]:
    """The chart installed in `namespace` (the session installed the CRDs), uninstalled after."""
    name = f"lmscale-{namespace[-5:]}"
    helm("install", name, str(CHART), "--namespace", namespace, "--skip-crds", *values)
    yield name
    helm("uninstall", name, "--namespace", namespace, "--wait", "--timeout", "90s",
         check=False)


def service_address(cluster: ClusterHandle, namespace: str, name: str) -> tuple[str, int]:
    service = get_json(cluster, "service", name, "-n", namespace)
    return service["spec"]["clusterIP"], int(service["spec"]["ports"][0]["port"])
