"""The admin kubeconfig of the local cluster (client certificate in system:masters)."""

from __future__ import annotations

from pathlib import Path

import yaml


def render(*, server: str, pki: Path, name: str = "lmscale-local") -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {
            "server": server, "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": "admin", "user": {
            "client-certificate": str(pki / "admin.crt"), "client-key": str(pki / "admin.key")}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": "admin"}}],
        "current-context": name,
    }
    return yaml.safe_dump(config, sort_keys=False)
