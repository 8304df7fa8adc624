"""The real node: a kubelet, kube-proxy and containerd on this machine, joined to the local
control plane beside the kwok GPU pools, so pods run real processes.

It takes machine-wide resources (a bridge, iptables chains, port 10250, fixed runtime paths),
so one cluster per machine has it: the one `Layout.default()` makes at the default ports.
Needs root. Images are imported into its containerd (`lmscale.devcluster.images`), never pulled.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from pathlib import Path

from lmscale.devcluster import hostnet, images, nodeconfig, pki, processes
from lmscale.devcluster.layout import Layout

# Start order; `down` stops in reverse.
COMPONENTS = ("containerd", "apiserver-proxy", "prometheus-proxy", "kubelet", "kube-proxy")
# The catalog GPU type the node claims, so an LMD can put real pods on it.
GPU_PRODUCT = "NVIDIA-L40S"
GPU_MEMORY_MIB = "46068"
GPU_COUNT = 4
NODE_LABELS = {
    "nvidia.com/gpu.product": GPU_PRODUCT,
    "nvidia.com/gpu.memory": GPU_MEMORY_MIB,
    "nvidia.com/gpu.count": str(GPU_COUNT),
    "lmscale.dev/node-kind": "real",
}


def paths(layout: Layout) -> nodeconfig.NodePaths:
    return nodeconfig.NodePaths(layout.root / "node")


def argv_of(layout: Layout, bins: dict[str, Path]) -> dict[str, list[str]]:
    """Every node process's command line."""
    p = paths(layout)
    labels = ",".join(f"{k}={v}" for k, v in NODE_LABELS.items())
    return {
        "containerd": ["containerd", f"--config={p.containerd_config}", "--log-level=warn"],
        # The apiserver listens on loopback, which an EndpointSlice may not hold: pods reach
        # it through the `kubernetes` Service, whose endpoint is this forwarder on the bridge.
        "apiserver-proxy": _forwarder(layout.ports.apiserver),
        # Pods (the operator among them) read the local Prometheus at the node's address.
        "prometheus-proxy": _forwarder(layout.ports.prometheus),
        "kubelet": [
            str(bins["kubelet"]), f"--config={p.kubelet_config}",
            f"--kubeconfig={p.kubeconfig('kubelet')}", f"--root-dir={p.kubelet_root}",
            f"--hostname-override={nodeconfig.NODE_NAME}", f"--node-ip={nodeconfig.NODE_IP}",
            f"--node-labels={labels}", "--v=1",
        ],
        "kube-proxy": [str(bins["kube-proxy"]), f"--config={p.kube_proxy_config}", "--v=1"],
    }


def _forwarder(port: int) -> list[str]:
    """A loopback port reachable from pods at the node's address, same number."""
    return ["socat", f"TCP-LISTEN:{port},bind={nodeconfig.NODE_IP},fork,reuseaddr",
            f"TCP:127.0.0.1:{port}"]


def in_cluster_url(port: int) -> str:
    return f"http://{nodeconfig.NODE_IP}:{port}"


def write_config(layout: Layout) -> None:
    p = paths(layout)
    for folder in (p.containerd_root, p.containerd_state, p.cni_conf_dir, p.cni_ipam_dir,
                   p.kubelet_root, p.pod_logs):
        folder.mkdir(parents=True, exist_ok=True)
    pki.ensure_client(layout.pki, "kubelet",
                      f"/O=system:nodes/CN=system:node:{nodeconfig.NODE_NAME}")
    pki.ensure_client(layout.pki, "kube-proxy", "/CN=system:kube-proxy")
    files = {
        p.containerd_config: nodeconfig.containerd_config(p),
        p.cni_conf_dir / "10-lmscale.conflist": nodeconfig.cni_conflist(p),
        p.kubelet_config: nodeconfig.kubelet_config(p, pki=layout.pki),
        p.kube_proxy_config: nodeconfig.kube_proxy_config(p),
        **{p.kubeconfig(user): nodeconfig.client_kubeconfig(
            server=layout.apiserver_url, pki=layout.pki, user=user)
           for user in ("kubelet", "kube-proxy")},
    }
    for path, text in files.items():
        # kube-proxy exits when its configuration file changes: rewrite only what differs.
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


def kubernetes_endpoints(layout: Layout) -> dict[str, object]:
    """The `kubernetes` Service's endpoint: the forwarder on the bridge."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kubernetes", "namespace": "default",
            "labels": {"kubernetes.io/service-name": "kubernetes",
                       "endpointslice.kubernetes.io/managed-by": "lmscale-devcluster"},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [nodeconfig.NODE_IP], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": layout.ports.apiserver, "protocol": "TCP"}],
    }


def gpu_capacity_patch() -> str:
    """A fake `nvidia.com/gpu` capacity, as a device plugin would report it."""
    gpus = str(GPU_COUNT)
    return json.dumps({"status": {"capacity": {"nvidia.com/gpu": gpus},
                                  "allocatable": {"nvidia.com/gpu": gpus}}})


def start(layout: Layout, bins: dict[str, Path], *, preload: list[Path],
          timeout: float = 60.0) -> None:
    """Bridge, config, containerd with `preload` imported, then the rest; the caller waits
    for the Node to be Ready."""
    hostnet.ensure_bridge(nodeconfig.BRIDGE, nodeconfig.NODE_IP, 16)
    write_config(layout)
    hostnet.remember_ip_forward(_ip_forward_state(layout))
    argv = argv_of(layout, bins)
    p = paths(layout)
    processes.start("containerd", argv["containerd"], pids=layout.pids, logs=layout.logs)
    deadline = time.monotonic() + timeout
    while not p.containerd_socket.exists():
        if time.monotonic() > deadline or not processes.running_pid(layout.pids, "containerd"):
            raise RuntimeError(f"containerd did not start; see {layout.logs / 'containerd.log'}")
        time.sleep(0.1)
    images.load(p.containerd_socket, preload)
    for name in COMPONENTS[1:]:
        processes.start(name, argv[name], pids=layout.pids, logs=layout.logs)


def _ip_forward_state(layout: Layout) -> Path:
    return paths(layout).root / "ip_forward.before"


def running(layout: Layout) -> dict[str, int | None]:
    return {name: processes.running_pid(layout.pids, name) for name in COMPONENTS}


def stop(layout: Layout, *, kube_proxy: Path | None) -> None:
    """Stop the node and take back every change it made to the host."""
    p = paths(layout)
    for name in reversed(COMPONENTS):
        processes.stop(name, pids=layout.pids, grace_seconds=5.0)
    if kube_proxy is not None:  # its Service chains, in both families
        subprocess.run([str(kube_proxy), "--cleanup", f"--config={p.kube_proxy_config}"],
                       capture_output=True, check=False)
    hostnet.kill_processes_mentioning(str(p.containerd_socket))  # shims outlive containerd
    hostnet.kill_runc_containers(Path("/run/containerd/runc/k8s.io"))
    time.sleep(0.2)
    hostnet.remove_netns()
    hostnet.unmount_under([p.root, Path("/run/containerd")])
    hostnet.remove_cgroups()
    hostnet.remove_owned_chains()
    hostnet.delete_bridge(nodeconfig.BRIDGE)
    hostnet.restore_ip_forward(_ip_forward_state(layout))
    for path in hostnet.FIXED_PATHS:
        shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(OSError):  # /run/containerd, /var/lib/kubelet: if now empty
            path.parent.rmdir()
    shutil.rmtree(p.root, ignore_errors=True)
