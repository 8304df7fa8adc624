"""Configuration files of the real node: containerd, CNI, kubelet and kube-proxy.

Pure renderers: every path comes in through `NodePaths`, so one function call shows what a
node is made of. Settings that matter on these machines (cgroup v1, root without
CAP_SYS_RESOURCE, no registry) carry a comment saying why.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import yaml

NODE_NAME = "lmscale-node"
BRIDGE = "lmscale0"
# Clear of kwok's pod range (10.244/16), Services (10.96/16) and Docker's 172.17/16.
POD_SUBNET = "10.88.0.0/16"
NODE_IP = "10.88.0.1"
KUBELET_PORT = 10250
# The taint that keeps pods off the real node unless they ask for it.
TAINT_KEY = "lmscale.dev/real-node"
PAUSE_IMAGE = "localhost/lmscale/pause:3.10"
CNI_BIN_DIR = "/usr/lib/cni"


@dataclasses.dataclass(frozen=True)
class NodePaths:
    """Where one real node keeps its state; everything lives under `root`."""

    root: Path

    @property
    def containerd_root(self) -> Path:
        return self.root / "containerd" / "root"

    @property
    def containerd_state(self) -> Path:
        return self.root / "containerd" / "state"

    @property
    def containerd_config(self) -> Path:
        return self.root / "containerd" / "config.toml"

    @property
    def containerd_socket(self) -> Path:
        return self.root / "containerd" / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def cni_ipam_dir(self) -> Path:
        return self.root / "cni" / "ipam"

    @property
    def kubelet_root(self) -> Path:
        return self.root / "kubelet"

    @property
    def kubelet_config(self) -> Path:
        return self.root / "kubelet-config.yaml"

    @property
    def pod_logs(self) -> Path:
        return self.root / "pod-logs"

    @property
    def kube_proxy_config(self) -> Path:
        return self.root / "kube-proxy-config.yaml"

    def kubeconfig(self, user: str) -> Path:
        return self.root / f"{user}.kubeconfig"


def containerd_config(paths: NodePaths) -> str:
    """A second containerd with CRI on, its own root, state and socket (Docker's has CRI off).

    restrict_oom_score_adj: root here lacks CAP_SYS_RESOURCE, and without it every sandbox
    fails with "runc create failed: can't get final child's PID from pipe: EOF".
    """
    cri = '[plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{paths.containerd_root}"
state = "{paths.containerd_state}"

[grpc]
  address = "{paths.containerd_socket}"

{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true

{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false

{cri}.cni]
  bin_dir = "{CNI_BIN_DIR}"
  conf_dir = "{paths.cni_conf_dir}"
"""


def cni_conflist(paths: NodePaths) -> str:
    """Pods on one bridge with host-local addresses; `firewall` admits their traffic where a
    FORWARD DROP policy (Docker's) would drop it."""
    return json.dumps({
        "cniVersion": "1.0.0",
        "name": "lmscale",
        "plugins": [
            {
                "type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET, "gateway": NODE_IP}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(paths.cni_ipam_dir),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
            {"type": "firewall", "backend": "iptables"},
        ],
    }, indent=2)


def kubelet_config(paths: NodePaths, *, pki: Path) -> str:
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        # The apiserver calls logs/exec with a client certificate of the cluster CA and the
        # kubelet asks the apiserver whether that user may (as on any real cluster).
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{paths.containerd_socket}",
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,  # v1.35+ refuses cgroup v1 hosts otherwise
        "failSwapOn": False,
        # Images are imported, never pulled: garbage collection could not bring them back.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                         "imagefs.available": "1%"},
        "podLogsDir": str(paths.pod_logs),
        "registerWithTaints": [{"key": TAINT_KEY, "value": "true", "effect": "NoSchedule"}],
        "serializeImagePulls": False,
        "maxPods": 60,
    }
    return yaml.safe_dump(config, sort_keys=False)


def kube_proxy_config(paths: NodePaths) -> str:
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(paths.kubeconfig("kube-proxy"))},
        "hostnameOverride": NODE_NAME,
        "mode": "iptables",
        "clusterCIDR": POD_SUBNET,
        "bindAddress": NODE_IP,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        # Zeros leave the host's conntrack sysctls alone; no route_localnet for NodePorts.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                      "tcpCloseWaitTimeout": "0s"},
        "iptables": {"localhostNodePorts": False},
        "nodePortAddresses": [f"{NODE_IP}/32"],
    }
    return yaml.safe_dump(config, sort_keys=False)


def client_kubeconfig(*, server: str, pki: Path, user: str) -> str:
    """A kubeconfig for a node component, with its own client certificate `pki/<user>.crt`."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {
            "server": server, "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": user, "user": {
            "client-certificate": str(pki / f"{user}.crt"),
            "client-key": str(pki / f"{user}.key")}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
        "current-context": "local",
    }
    return yaml.safe_dump(config, sort_keys=False)
