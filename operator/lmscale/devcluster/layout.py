"""Where the local cluster keeps its files and which loopback ports it listens on."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path


def repo_root() -> Path:
    """The checkout that holds hack/localcluster (the cluster is a development tool)."""
    if env := os.environ.get("LMSCALE_REPO_ROOT"):
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "hack" / "localcluster" / "versions.env").is_file():
            return parent
    raise FileNotFoundError(
        "cannot find hack/localcluster/versions.env above lmscale; "
        "run from a checkout of lmscale or set LMSCALE_REPO_ROOT"
    )


@dataclasses.dataclass(frozen=True)
class Ports:
    etcd_client: int = 23790
    etcd_peer: int = 23800
    apiserver: int = 16443
    controller_manager: int = 20257
    scheduler: int = 20259
    kwok: int = 20247
    prometheus: int = 19090


@dataclasses.dataclass(frozen=True)
class Layout:
    """Paths of one local cluster's state; everything lives under `root`."""

    root: Path
    hack: Path
    ports: Ports = dataclasses.field(default_factory=Ports)
    # A real kubelet node beside the kwok pools (lmscale.devcluster.node): one per machine.
    real_node: bool = False

    @classmethod
    def default(cls) -> Layout:
        """The checkout's cluster; LMSCALE_CLUSTER_PORT_OFFSET shifts every port so that
        several checkouts on one machine can each run their own. Only the cluster at the
        default ports gets the real node (as root; LMSCALE_REAL_NODE=0 leaves it out).
        Each offset has its own state directory, so two clusters of one checkout never
        share certificates or pid files."""
        hack = repo_root() / "hack" / "localcluster"
        offset = int(os.environ.get("LMSCALE_CLUSTER_PORT_OFFSET", "0"))
        state = ".localcluster" if offset == 0 else f".localcluster-{offset}"
        root = Path(os.environ.get("LMSCALE_CLUSTER_DIR", repo_root() / state))
        ports = Ports(**{field.name: getattr(Ports(), field.name) + offset
                         for field in dataclasses.fields(Ports)})
        real_node = (offset == 0 and os.geteuid() == 0
                     and os.environ.get("LMSCALE_REAL_NODE", "1") != "0")
        return cls(root=root, hack=hack, ports=ports, real_node=real_node)

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def prometheus_targets(self) -> Path:
        """File-service-discovery folder: drop `<job>.json` here to add a scrape target."""
        return self.root / "prometheus" / "targets"

    @property
    def apiserver_url(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.prometheus}"
