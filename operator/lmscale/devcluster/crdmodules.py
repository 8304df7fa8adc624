"""Other projects' CRDs in the local cluster, from their Go modules: the Gateway API, its
Inference Extension, and the Prometheus Operator's monitoring kinds.

Their YAML ships inside the modules sigs.k8s.io/gateway-api (standard channel),
sigs.k8s.io/gateway-api-inference-extension and github.com/prometheus-operator/prometheus-operator,
pinned in versions.env; `go mod download` fetches each once into the Go module cache, so no
manifest is copied into this repository. Routes, pools, PodMonitors and rules lmscale renders
are checked against these schemas (their CEL rules too).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lmscale.devcluster import binaries


@dataclass(frozen=True)
class Module:
    path: str
    version_key: str
    files: tuple[str, ...]


MODULES = (
    Module("sigs.k8s.io/gateway-api", "GATEWAY_API_VERSION", tuple(
        f"config/crd/standard/gateway.networking.k8s.io_{kind}.yaml"
        for kind in ("gatewayclasses", "gateways", "httproutes", "grpcroutes",
                     "referencegrants", "backendtlspolicies"))),
    Module("sigs.k8s.io/gateway-api-inference-extension", "INFERENCE_EXTENSION_VERSION", (
        "config/crd/bases/inference.networking.k8s.io_inferencepools.yaml",
        "config/crd/bases/inference.networking.x-k8s.io_inferenceobjectives.yaml",
    )),
    # v0.85.0 is the newest version of the root module (which holds example/) the proxy serves.
    Module("github.com/prometheus-operator/prometheus-operator", "PROMETHEUS_OPERATOR_VERSION",
           tuple(f"example/prometheus-operator-crd/monitoring.coreos.com_{kind}.yaml"
                 for kind in ("podmonitors", "servicemonitors", "prometheusrules"))),
)


class ModuleError(RuntimeError):
    """A module could not be fetched; the message names it and what go said."""


def module_dir(path: str, version: str) -> Path:
    """The module's directory in the Go module cache (downloaded on first use)."""
    try:
        done = subprocess.run(["go", "mod", "download", "-json", f"{path}@{version}"],
                              capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        raise ModuleError(f"the go command is needed to fetch {path}@{version} "
                          "(hack/install-deps.sh installs it)") from None
    info = json.loads(done.stdout or "{}")
    if done.returncode != 0 or "Dir" not in info:
        raise ModuleError(f"go mod download {path}@{version}: "
                          f"{info.get('Error') or done.stderr.strip()}")
    return Path(info["Dir"])


def crd_files(hack: Path) -> list[Path]:
    """The CRD files of every module at its pinned version."""
    versions = binaries.read_versions(hack)
    files = []
    for module in MODULES:
        root = module_dir(module.path, versions[module.version_key])
        files += [root / f for f in module.files]
    return files
