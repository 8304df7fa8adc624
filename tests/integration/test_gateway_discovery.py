"""The activator's per-pod backends against a real API server, as its ServiceAccount.

The chart's activator RBAC is applied (rendered by helm) and the activator authenticates
with a real token of its account (the Python client ignores a kubeconfig's `as:`). A
`<model>-pods` Service, Pods carrying `lmscale.dev/capacity` and EndpointSlices written by
hand (the pods need not run: they are never scheduled, so the EndpointSlice controller
lists none of them) are what it discovers. Two HTTP servers on this machine's own address
(EndpointSlices refuse loopback addresses) stand for a fast and a slow pod.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ClusterHandle, free_port
from tests.integration.test_chart_install import CHART, _release, _token_kubeconfig

pytestmark = [pytest.mark.cluster]

MODEL = "chat"
SERVICE = f"{MODEL}-pods"
NOT_FOR_TESTS = "lmscale-test"  # the slices' manager: not the EndpointSlice controller


def _own_address() -> str:
    """A non-loopback IPv4 address of this machine (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
            address = str(s.getsockname()[0])
        except OSError:
            address = ""
    if not address or address.startswith("127."):
        pytest.fail("this machine has no non-loopback IPv4 address for a pod's stand-in")
    return address


class Pod:
    """An HTTP server standing for one model pod: Ready, holds completions until released."""

    def __init__(self, name: str, address: str, arrived: Counter[str],
                 release: threading.Event) -> None:
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self._answer(200 if self.path == "/health" else 404, b"{}")

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    arrived[name] += 1
                release.wait(60)
                self._answer(200, json.dumps({"pod": name}).encode())

        self.server = ThreadingHTTPServer((address, 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _pod(namespace: str, name: str, capacity: str | None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"lmscale.dev/deployment": MODEL},
                         "annotations": {"lmscale.dev/capacity": capacity} if capacity else {}},
            # never scheduled: no node, no IP, nothing of the controller's in the way
            "spec": {"nodeSelector": {"lmscale.dev/no-such-node": "true"},
                     "containers": [{"name": "engine", "image": "lmscale.invalid/none"}]}}


def _slice(namespace: str, name: str, address: str, port: int, pod: str,
           *, ready: bool = True) -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": namespace, "labels": {
                "kubernetes.io/service-name": SERVICE,
                "endpointslice.kubernetes.io/managed-by": NOT_FOR_TESTS,
                # the EndpointSlice controller copies the Service's labels onto its slices
                "lmscale.dev/activator": "backend"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [address], "conditions": {"ready": ready},
                           "targetRef": {"kind": "Pod", "name": pod, "namespace": namespace}}]}


@pytest.fixture
def activator_account(cluster: ClusterHandle, kubeconfig_path: Path, namespace: str,
                      helm: Callable[..., subprocess.CompletedProcess[str]],
                      tmp_path: Path) -> Iterator[Path]:
    """The chart's activator ServiceAccount and its (cluster) RBAC; a kubeconfig with a
    real token of that account."""
    release = _release(namespace)
    rendered = helm("template", release, str(CHART), "--namespace", namespace,
                    "--set", "activator.enabled=true").stdout
    account = f"{release}-activator"
    docs = [d for d in yaml.safe_load_all(rendered) if d and d["metadata"]["name"] == account
            and d["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")]
    assert len(docs) == 3
    manifest = yaml.safe_dump_all(docs)
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=manifest)
    try:
        yield _token_kubeconfig(cluster, kubeconfig_path, namespace, account, tmp_path)
    finally:
        cluster.kubectl("delete", "clusterrole,clusterrolebinding", account,
                        "--ignore-not-found", "--wait=false", check=False)


@pytest.fixture
def pods(cluster: ClusterHandle, namespace: str) -> Iterator[tuple[dict[str, Pod],
                                                                  Counter[str],
                                                                  threading.Event]]:
    """The model's Service, Pods (fast: 30, slow: 10, starting: not ready) and slices."""
    address = _own_address()
    arrived: Counter[str] = Counter()
    release = threading.Event()
    servers = {name: Pod(name, address, arrived, release) for name in ("fast", "slow")}
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": SERVICE, "namespace": namespace,
                            "labels": {"lmscale.dev/deployment": MODEL,
                                       "lmscale.dev/activator": "backend"},
                            "annotations": {"lmscale.dev/served-model": MODEL,
                                            "lmscale.dev/activator-hosts":
                                                f"{MODEL}.{namespace}.svc"}},
               "spec": {"selector": {"lmscale.dev/deployment": MODEL},
                        "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
    # the model's own Service, selector-less behind the activator: its ClusterIP names it
    front = {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": MODEL, "namespace": namespace,
                          "labels": {"lmscale.dev/deployment": MODEL,
                                     "lmscale.dev/activator": "frontend"}},
             "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8000}]}}
    objects = [service, front, _pod(namespace, "fast", "30"), _pod(namespace, "slow", "10"),
               _pod(namespace, "starting", None),
               _slice(namespace, "chat-fast", address, servers["fast"].port, "fast"),
               _slice(namespace, "chat-slow", address, servers["slow"].port, "slow"),
               _slice(namespace, "chat-starting", address, free_port(), "starting",
                      ready=False)]
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all(objects))
    try:
        yield servers, arrived, release
    finally:
        release.set()
        for server in servers.values():
            server.close()


def _wait(what: str, check: Callable[[], Any], timeout: float = 60.0, log: Path | None = None
          ) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


def test_the_controllers_slices_carry_the_label_the_activator_selects_them_by(
        cluster: ClusterHandle, namespace: str, pods: Any) -> None:
    """The activator lists slices by `lmscale.dev/activator=backend`: the real
    EndpointSlice controller copies it from the Service onto the slices it writes."""
    found = _wait("the EndpointSlice controller's slice of chat-pods", lambda: cluster.kubectl(
        "get", "endpointslices", "-n", namespace, "-o", "name", "-l",
        "kubernetes.io/service-name=chat-pods,lmscale.dev/activator=backend,"
        "endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io",
        check=False).stdout.strip())
    assert found


def test_discovery_as_the_activators_account_weighs_each_ready_pod(
        cluster: ClusterHandle, namespace: str, activator_account: Path, pods: Any) -> None:
    from lmscale.gateway import discovery
    from lmscale.k8s.client import Kube, make_api_client

    servers, _, _ = pods
    transport = make_api_client(activator_account)
    try:
        warned: dict[str, str] = {}
        services, slices, marks = discovery.read_cluster(Kube(transport), warned=warned)
    finally:
        transport.close()
    assert not warned, warned  # nothing refused (403) to the chart's RBAC
    route = discovery.table_of(services, {}, slices, marks)[f"{namespace}/{MODEL}"]
    address = _own_address()
    assert dict(zip(route.backends, route.capacities, strict=True)) == {
        f"http://{address}:{servers['fast'].port}": 30.0,
        f"http://{address}:{servers['slow'].port}": 10.0}
    # a request sent to the model's Service by IP carries that IP as its Host
    cluster_ip = cluster.kubectl("get", "service", MODEL, "-n", namespace, "-o",
                                 "jsonpath={.spec.clusterIP}").stdout.strip()
    assert cluster_ip and cluster_ip in route.hosts, (cluster_ip, route.hosts)


def test_the_activator_sends_the_slow_pod_its_share(
        namespace: str, activator_account: Path, pods: Any, tmp_path: Path) -> None:
    """`lmscale gateway --discover` as the account: 8 requests in flight at once split 6:2
    over pods of capacity 30 and 10 (kube-proxy's round robin would split them 4:4)."""
    servers, arrived, release = pods
    port, admin = free_port(), free_port()
    log = tmp_path / "activator.log"
    with log.open("wb") as out:
        gateway = subprocess.Popen(
            [sys.executable, "-m", "lmscale", "gateway", "--discover", "--discover-interval",
             "1", "--probe-interval", "0.2", "--kubeconfig", str(activator_account),
             "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin}"],
            stdout=out, stderr=subprocess.STDOUT)
    try:
        def two_ready() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics",
                                            timeout=5) as page:
                    text = page.read().decode()
            except OSError:
                return False
            return (f'lmscale_gateway_ready_backends{{model="{namespace}/{MODEL}"}} 2.0'
                    in text)

        _wait("both pods ready behind the activator", two_ready, log=log)

        def post() -> int:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/completions", method="POST",
                data=json.dumps({"model": MODEL, "prompt": "hi"}).encode(),
                # by Host: other tests' namespaces, going, may serve a "chat" too
                headers={"Content-Type": "application/json", "Host": f"{MODEL}.{namespace}.svc"})
            with urllib.request.urlopen(request, timeout=60) as answer:
                return int(answer.status)

        with ThreadPoolExecutor(max_workers=8) as pool:
            sent = []
            for n in range(1, 9):  # one at a time, so each pick sees the ones in flight
                sent.append(pool.submit(post))
                _wait(f"request {n} at a pod", lambda n=n: sum(arrived.values()) == n)
            assert arrived == Counter({"fast": 6, "slow": 2}), (arrived, log.read_text()[-2000:])
            release.set()
            assert [f.result(timeout=60) for f in sent] == [200] * 8
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)
    text = log.read_text(errors="replace")
    assert "HTTP 403" not in text and "Forbidden" not in text, text[-3000:]
