"""Finds the control-plane binaries: envtest's conventions first, then the version cache.

Order for a binary NAME: `TEST_ASSET_<NAME>` (controller-runtime's envtest), then
`$KUBEBUILDER_ASSETS/NAME` (setup-envtest), then the cache filled by
hack/localcluster/build.sh, which builds it from the Go module proxy when missing.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

# Which build.sh component provides each binary.
COMPONENT_OF = {
    "etcd": "etcd",
    "kube-apiserver": "kubernetes",
    "kube-controller-manager": "kubernetes",
    "kube-scheduler": "kubernetes",
    "kubectl": "kubernetes",
    "kubelet": "kubernetes",
    "kube-proxy": "kubernetes",
    "kwok": "kwok",
    "helm": "helm",
    "prometheus": "prometheus",
    "promtool": "prometheus",
}


def read_versions(hack: Path) -> dict[str, str]:
    """The pinned versions from versions.env (KEY=VALUE lines, # comments)."""
    versions = {}
    for line in (hack / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            versions[key] = value
    return versions


def from_environment(name: str) -> Path | None:
    """A binary named by envtest's variables, if any is set and exists."""
    explicit = os.environ.get("TEST_ASSET_" + name.upper().replace("-", "_"))
    if explicit:
        return Path(explicit)
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and (Path(assets) / name).is_file():
        return Path(assets) / name
    return None


def from_cache(name: str, *, hack: Path) -> Path | None:
    """`name` if it is already at hand (environment or version cache); never builds."""
    if found := from_environment(name):
        return found
    component = COMPONENT_OF[name]
    version = read_versions(hack)[f"{component.upper()}_VERSION"]
    xdg = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    cache = Path(os.environ.get("LMSCALE_BIN_CACHE") or xdg / "lmscale" / "bin")
    path = cache / f"{component}-{version}" / name
    return path if path.is_file() else None


def prometheus(hack: Path) -> Path:
    """LMSCALE_PROMETHEUS_BIN, else the Prometheus built with Kubernetes service discovery."""
    if explicit := os.environ.get("LMSCALE_PROMETHEUS_BIN"):
        return Path(explicit)
    return find("prometheus", hack=hack)


def find(name: str, *, hack: Path, build: bool = True) -> Path:
    """Path of binary `name`, building its component into the cache when needed."""
    if found := from_environment(name):
        return found
    component = COMPONENT_OF[name]
    if not build:
        raise FileNotFoundError(f"{name} is not built; run `make binaries`")
    result = subprocess.run(
        ["bash", str(hack / "build.sh"), component],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    path = Path(result.stdout.strip().splitlines()[-1]) / name
    if not path.is_file():
        raise FileNotFoundError(f"build of {component} did not produce {path}")
    return path
