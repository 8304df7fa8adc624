"""Where the apiserver is and how to prove who we are: the pod's service account, else a kubeconfig.

Read here rather than through the generated kubernetes client, whose import alone costs the
operator about 20 MB of resident memory for models it never uses. The same credentials feed
kopf's login and lmscale's own client, so both act as the same identity. Supported: client
certificates, bearer tokens and token files (what service accounts, kind, kubeadm and the
local cluster issue); exec and auth-provider plugins are not.
"""

from __future__ import annotations

import base64
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
# The kubelet rotates projected service-account tokens; re-read the file this often.
TOKEN_REREAD_SECONDS = 60.0


class CredentialsError(ValueError):
    """No usable credentials; the message says what was looked for and what to set."""


@dataclass
class Credentials:
    """One identity on one apiserver. PEM material is kept as bytes, never written to disk."""

    server: str
    ca_pem: bytes | None = None
    insecure: bool = False
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    token: str | None = None
    token_file: Path | None = None
    namespace: str | None = None
    _token_read_at: float = field(default=0.0, repr=False)

    def bearer_token(self) -> str | None:
        """The token to send now: a token file is re-read once a minute (rotation)."""
        if self.token_file is not None and (
                self.token is None
                or time.monotonic() - self._token_read_at > TOKEN_REREAD_SECONDS):
            self.token = self.token_file.read_text().strip()
            self._token_read_at = time.monotonic()
        return self.token


def load(kubeconfig: str | os.PathLike[str] | None = None) -> Credentials:
    """An explicit kubeconfig, else the pod's service account, else $KUBECONFIG (~/.kube/config)."""
    if kubeconfig is not None:
        return from_kubeconfig(Path(kubeconfig))
    if (SERVICE_ACCOUNT / "token").exists() and os.environ.get("KUBERNETES_SERVICE_HOST"):
        return in_cluster()
    path = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or "~/.kube/config"
    return from_kubeconfig(Path(path).expanduser())


def in_cluster(root: Path = SERVICE_ACCOUNT) -> Credentials:
    host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise CredentialsError("in a pod without KUBERNETES_SERVICE_HOST: the kubelet sets it")
    if ":" in host:
        host = f"[{host}]"  # IPv6
    namespace_file = root / "namespace"
    return Credentials(
        server=f"https://{host}:{port}",
        ca_pem=(root / "ca.crt").read_bytes(),
        token_file=root / "token",
        namespace=namespace_file.read_text().strip() if namespace_file.exists() else None,
    )


def from_kubeconfig(path: Path) -> Credentials:
    """The current context of one kubeconfig file; relative file paths are relative to it."""
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except OSError as error:
        raise CredentialsError(f"cannot read kubeconfig {path}: {error.strerror}; set "
                               "KUBECONFIG to a kubeconfig file") from None
    context_name = config.get("current-context")
    context = _named(config, "contexts", context_name, path).get("context") or {}
    cluster = _named(config, "clusters", context.get("cluster"), path).get("cluster") or {}
    user = _named(config, "users", context.get("user"), path).get("user") or {}
    if "exec" in user or "auth-provider" in user:
        raise CredentialsError(f"kubeconfig {path}: user {context.get('user')!r} uses an exec "
                               "or auth-provider plugin, which lmscale does not run; use a "
                               "token or client certificate (kubectl create token ...)")
    server = cluster.get("server")
    if not server:
        raise CredentialsError(f"kubeconfig {path}: cluster {context.get('cluster')!r} "
                               "has no server")
    base = path.parent
    token_file = user.get("tokenFile")
    return Credentials(
        server=str(server).rstrip("/"),
        ca_pem=_pem(cluster, "certificate-authority", base),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        cert_pem=_pem(user, "client-certificate", base),
        key_pem=_pem(user, "client-key", base),
        token=user.get("token"),
        token_file=base / token_file if token_file else None,
        namespace=context.get("namespace"),
    )


def _named(config: dict[str, Any], section: str, name: object, path: Path) -> dict[str, Any]:
    for entry in config.get(section) or []:
        if entry.get("name") == name:
            return dict(entry)
    raise CredentialsError(f"kubeconfig {path}: no {section[:-1]} named {name!r} "
                           f"(current-context {config.get('current-context')!r})")


def _pem(section: dict[str, Any], key: str, base: Path) -> bytes | None:
    if data := section.get(f"{key}-data"):
        return base64.b64decode(data)
    if file := section.get(key):
        return (base / file).read_bytes()
    return None
