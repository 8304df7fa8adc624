"""Certificates and keys for the local control plane, made with the openssl command line."""

from __future__ import annotations

import subprocess
from pathlib import Path

APISERVER_SANS = (
    "IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
    "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _issue(pki: Path, name: str, subject: str, *, extensions: str) -> None:
    """A key and a certificate signed by the local CA."""
    _openssl("genrsa", "-out", f"{name}.key", "2048", cwd=pki)
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr", cwd=pki)
    (pki / f"{name}.ext").write_text(extensions)
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "365", "-sha256", "-extfile", f"{name}.ext",
        "-out", f"{name}.crt", cwd=pki,
    )


def ensure(pki: Path) -> None:
    """Create the CA, serving and admin certificates and the service-account key pair once."""
    if (pki / "complete").exists():
        return
    pki.mkdir(parents=True, exist_ok=True)
    _openssl("genrsa", "-out", "ca.key", "2048", cwd=pki)
    _openssl(
        "req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=lmscale-local-ca",
        "-days", "3650", "-sha256", "-out", "ca.crt", cwd=pki,
    )
    _issue(
        pki, "apiserver", "/CN=kube-apiserver",
        extensions=f"subjectAltName={APISERVER_SANS}\nextendedKeyUsage=serverAuth\n",
    )
    # system:masters: the admin identity of the kubeconfig (and of the local components).
    _issue(pki, "admin", "/O=system:masters/CN=lmscale-admin",
           extensions="extendedKeyUsage=clientAuth\n")
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
    (pki / "complete").write_text("")


def ensure_client(pki: Path, name: str, subject: str) -> None:
    """A client certificate `name.crt` for `subject` (O= groups, CN= user), issued once."""
    if not (pki / f"{name}.crt").exists():
        _issue(pki, name, subject, extensions="extendedKeyUsage=clientAuth\n")
