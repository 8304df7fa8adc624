"""Bring the local cluster up and down. `up` is idempotent; `down` leaves no process behind."""

from __future__ import annotations

import json
import logging
import os
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml

from lmscale.devcluster import (
    binaries,
    crdmodules,
    images,
    kubeconfig,
    node,
    nodeconfig,
    nodepools,
    pki,
    processes,
    prometheus,
)
from lmscale.devcluster.layout import Layout

log = logging.getLogger(__name__)

# Start order; `down` stops in reverse.
COMPONENTS = (
    "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "prometheus",
)
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"


class ClusterError(RuntimeError):
    """The local cluster could not start; the message says which part and where its log is."""


def up(layout: Layout | None = None, *, timeout: float = 120.0) -> Layout:
    layout = layout or Layout.default()
    started = time.monotonic()
    bins = {name: binaries.find(name, hack=layout.hack) for name in binaries.COMPONENT_OF
            if name not in ("helm", "prometheus", "promtool")}
    pki.ensure(layout.pki)
    layout.kubeconfig.write_text(kubeconfig.render(server=layout.apiserver_url, pki=layout.pki))
    shape = node_pools(layout)

    _start(layout, "etcd", _etcd_argv(layout, bins["etcd"]))
    _wait(layout, "etcd", lambda: _http_ok(f"http://127.0.0.1:{layout.ports.etcd_client}/health"),
          timeout)
    _start(layout, "kube-apiserver", _apiserver_argv(layout, bins["kube-apiserver"]))
    _wait(layout, "kube-apiserver", lambda: _https_ok(layout, "/readyz"), timeout)
    _start(layout, "kube-controller-manager", _controller_manager_argv(layout, bins))
    _start(layout, "kube-scheduler", _scheduler_argv(layout, bins))
    _start(layout, "kwok", _kwok_argv(layout, bins["kwok"], shape))
    _apply(layout, bins["kubectl"], nodepools.node_manifests(shape))
    _start(layout, "prometheus", _prometheus_argv(layout))
    _wait(layout, "prometheus", lambda: _http_ok(f"{layout.prometheus_url}/-/ready"), timeout)
    expected_nodes = sum(p.count for p in shape.pools)
    _wait(layout, "kwok", lambda: _ready_nodes(layout, bins["kubectl"]) >= expected_nodes, timeout)
    _wait(layout, "kube-controller-manager",
          lambda: _has_default_service_account(layout, bins["kubectl"]), timeout)
    for crd in crdmodules.crd_files(layout.hack):  # Gateway API, its extension, monitoring
        kubectl(layout, "apply", "--server-side", "--force-conflicts",
                "--field-manager=lmscale-devcluster", "-f", str(crd), binary=bins["kubectl"])
    if layout.real_node:
        start_real_node(layout, bins, timeout=timeout)
    (layout.root / "cluster.json").write_text(json.dumps({
        "kubeconfig": str(layout.kubeconfig),
        "apiserver": layout.apiserver_url,
        "prometheus": layout.prometheus_url,
        "prometheusTargets": str(layout.prometheus_targets),
        "kubectl": str(bins["kubectl"]),
    }, indent=2))
    log.info("local cluster ready in %.1f s", time.monotonic() - started)
    return layout


def start_real_node(layout: Layout, bins: dict[str, Path], *, timeout: float,
                    preload: tuple[Path, ...] = ()) -> None:
    """The real node joined and Ready, with the pause image and `preload` imported."""
    node.start(layout, bins, preload=[images.pause_archive(layout.hack), *preload])
    _apply(layout, bins["kubectl"], [node.kubernetes_endpoints(layout)])
    _wait(layout, "kubelet", lambda: _node_ready(layout, bins["kubectl"]), timeout)
    if exited := [n for n, pid in node.running(layout).items() if pid is None]:
        raise ClusterError(f"{exited[0]} exited; see {layout.logs / (exited[0] + '.log')}:\n"
                           + _tail(layout.logs / f"{exited[0]}.log"))
    kubectl(layout, "patch", "node", nodeconfig.NODE_NAME, "--subresource=status",
            "--type=merge", "-p", node.gpu_capacity_patch(), binary=bins["kubectl"])


def _node_ready(layout: Layout, binary: Path) -> bool:
    try:
        out = kubectl(layout, "get", "node", nodeconfig.NODE_NAME, "-o",
                      "jsonpath={.status.conditions[?(@.type=='Ready')].status}", binary=binary)
    except ClusterError:
        return False
    return out.strip() == "True"


def down(layout: Layout | None = None) -> None:
    layout = layout or Layout.default()
    if node.paths(layout).root.exists():
        kube_proxy = binaries.from_cache("kube-proxy", hack=layout.hack)
        node.stop(layout, kube_proxy=kube_proxy)
    for name in reversed(COMPONENTS):
        processes.stop(name, pids=layout.pids)
    shutil.rmtree(layout.root, ignore_errors=True)


def status(layout: Layout | None = None) -> dict[str, int | None]:
    layout = layout or Layout.default()
    names = COMPONENTS + (node.COMPONENTS if layout.real_node else ())
    return {name: processes.running_pid(layout.pids, name) for name in names}


def _nodepools_file(layout: Layout) -> Path:
    return Path(os.environ.get("LMSCALE_NODEPOOLS", layout.hack / "nodepools.yaml"))


def _start(layout: Layout, name: str, argv: list[str]) -> None:
    processes.start(name, argv, pids=layout.pids, logs=layout.logs)


def _wait(layout: Layout, name: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        exited = processes.running_pid(layout.pids, name) is None
        if name in COMPONENTS + node.COMPONENTS and exited:
            raise ClusterError(f"{name} exited; see {layout.logs / (name + '.log')}:\n"
                               + _tail(layout.logs / f"{name}.log"))
        time.sleep(0.25)
    raise ClusterError(f"{name} not ready after {timeout:.0f} s; see "
                       f"{layout.logs / (name + '.log')}:\n" + _tail(layout.logs / f"{name}.log"))


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _https_ok(layout: Layout, path: str) -> bool:
    context = ssl.create_default_context(cafile=str(layout.pki / "ca.crt"))
    context.load_cert_chain(str(layout.pki / "admin.crt"), str(layout.pki / "admin.key"))
    try:
        with urllib.request.urlopen(layout.apiserver_url + path, timeout=2, context=context) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def kubectl(layout: Layout, *args: str, stdin: str | None = None,
            binary: Path | None = None) -> str:
    """Run kubectl as the cluster's admin; its stdout, or ClusterError with its stderr."""
    binary = binary or binaries.find("kubectl", hack=layout.hack)
    result = subprocess.run(
        [str(binary), "--kubeconfig", str(layout.kubeconfig), *args],
        input=stdin, capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def _apply(layout: Layout, binary: Path, manifests: list[dict[str, object]]) -> None:
    kubectl(layout, "apply", "--server-side", "--field-manager=lmscale-devcluster",
            "-f", "-", stdin=yaml.safe_dump_all(manifests), binary=binary)


def _ready_nodes(layout: Layout, binary: Path) -> int:
    ready = "{.status.conditions[?(@.type=='Ready')].status}"
    out = kubectl(layout, "get", "nodes", "-o",
                  "jsonpath={range .items[*]}" + ready + "{'\\n'}{end}", binary=binary)
    return sum(1 for line in out.splitlines() if line.strip() == "True")


def _has_default_service_account(layout: Layout, binary: Path) -> bool:
    try:
        kubectl(layout, "get", "serviceaccount", "default", "-n", "default", binary=binary)
    except ClusterError:
        return False
    return True


def _etcd_argv(layout: Layout, etcd: Path) -> list[str]:
    client = f"http://127.0.0.1:{layout.ports.etcd_client}"
    peer = f"http://127.0.0.1:{layout.ports.etcd_peer}"
    return [
        str(etcd), "--name=lmscale", f"--data-dir={layout.root / 'etcd'}",
        f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=lmscale={peer}", "--unsafe-no-fsync=true",
        "--quota-backend-bytes=4294967296", "--log-level=warn",
    ]


def _apiserver_argv(layout: Layout, apiserver: Path) -> list[str]:
    p = layout.pki
    return [
        str(apiserver),
        f"--etcd-servers=http://127.0.0.1:{layout.ports.etcd_client}",
        "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
        f"--secure-port={layout.ports.apiserver}",
        f"--cert-dir={p}", f"--tls-cert-file={p / 'apiserver.crt'}",
        f"--tls-private-key-file={p / 'apiserver.key'}", f"--client-ca-file={p / 'ca.crt'}",
        # Node + NodeRestriction: the real node's kubelet gets exactly a node's rights.
        "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
        "--allow-privileged=true",
        # logs/exec/port-forward: the apiserver authenticates to kubelets as the admin.
        f"--kubelet-client-certificate={p / 'admin.crt'}",
        f"--kubelet-client-key={p / 'admin.key'}",
        "--kubelet-preferred-address-types=InternalIP,Hostname",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={p / 'sa.pub'}",
        f"--service-account-signing-key-file={p / 'sa.key'}",
        # The default admission chain stays on; a loopback advertise address cannot be an
        # Endpoints address, so the apiserver does not publish its own endpoints.
        "--endpoint-reconciler-type=none",
        "--enable-priority-and-fairness=false",
    ]


def _controller_manager_argv(layout: Layout, bins: dict[str, Path]) -> list[str]:
    return [
        str(bins["kube-controller-manager"]), f"--kubeconfig={layout.kubeconfig}",
        "--bind-address=127.0.0.1", f"--secure-port={layout.ports.controller_manager}",
        "--leader-elect=false", f"--root-ca-file={layout.pki / 'ca.crt'}",
        f"--service-account-private-key-file={layout.pki / 'sa.key'}",
        f"--cluster-cidr={POD_CIDR}", f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--controllers=*,-nodeipam,-cloud-node-lifecycle,-route,-service",
        "--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10",
        "--concurrent-gc-syncs=20",
    ]


def _scheduler_argv(layout: Layout, bins: dict[str, Path]) -> list[str]:
    return [
        str(bins["kube-scheduler"]), f"--kubeconfig={layout.kubeconfig}",
        "--bind-address=127.0.0.1", f"--secure-port={layout.ports.scheduler}",
        "--leader-elect=false",
    ]


def kwok_stages(layout: Layout, shape: nodepools.ClusterShape) -> str:
    """The Stage documents, with the pools' default start-up delay filled in."""
    text = (layout.hack / "kwok-stages.yaml").read_text()
    # A plain replace: the Stages' own Go templates also use `$`.
    return text.replace("${POD_STARTUP_MILLISECONDS}",
                        str(int(shape.pod_startup_seconds * 1000)))


def node_pools(layout: Layout) -> nodepools.ClusterShape:
    return nodepools.load(_nodepools_file(layout))


def start_prometheus(layout: Layout, *, timeout: float = 60.0) -> None:
    """Prometheus alone, for a cluster that is not ours (kind): same config, same targets."""
    _start(layout, "prometheus", _prometheus_argv(layout))
    _wait(layout, "prometheus", lambda: _http_ok(f"{layout.prometheus_url}/-/ready"), timeout)


def _kwok_argv(layout: Layout, kwok: Path, shape: nodepools.ClusterShape) -> list[str]:
    stages = layout.root / "kwok-stages.yaml"
    stages.write_text(kwok_stages(layout, shape))
    return [
        str(kwok), f"--kubeconfig={layout.kubeconfig}", f"--config={stages}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={nodepools.KWOK_NODE_ANNOTATION}=fake",
        f"--cidr={POD_CIDR}", "--node-ip=10.0.0.1", "--node-lease-duration-seconds=40",
        f"--server-address=127.0.0.1:{layout.ports.kwok}",
    ]


def _prometheus_argv(layout: Layout) -> list[str]:
    config = layout.root / "prometheus" / "prometheus.yml"
    config.parent.mkdir(parents=True, exist_ok=True)
    layout.prometheus_targets.mkdir(parents=True, exist_ok=True)
    config.write_text(prometheus.render_config(
        targets_dir=layout.prometheus_targets, self_port=layout.ports.prometheus,
        kwok_port=layout.ports.kwok, apiserver_url=layout.apiserver_url, pki=layout.pki,
    ))
    return [
        str(binaries.prometheus(layout.hack)),
        f"--config.file={config}", f"--storage.tsdb.path={layout.root / 'prometheus' / 'data'}",
        f"--web.listen-address=127.0.0.1:{layout.ports.prometheus}",
        "--web.enable-lifecycle", "--storage.tsdb.retention.time=1d", "--log.level=warn",
    ]
