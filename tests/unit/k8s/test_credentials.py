"""Credentials from a kubeconfig or a pod's service account, as kubectl reads them."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from lmscale.k8s import credentials
from lmscale.k8s.credentials import CredentialsError


def _kubeconfig(tmp_path: Path, user: dict[str, object], cluster: dict[str, object] | None = None
                ) -> Path:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "dev",
        "contexts": [{"name": "other", "context": {"cluster": "x", "user": "x"}},
                     {"name": "dev", "context": {"cluster": "c", "user": "u",
                                                 "namespace": "models"}}],
        "clusters": [{"name": "c", "cluster": cluster or {
            "server": "https://127.0.0.1:6443/",
            "certificate-authority-data": base64.b64encode(b"CA PEM").decode()}}],
        "users": [{"name": "u", "user": user}],
    }))
    return path


def test_client_certificate_files_are_read_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "admin.crt").write_bytes(b"CERT")
    (tmp_path / "pki" / "admin.key").write_bytes(b"KEY")
    creds = credentials.load(_kubeconfig(
        tmp_path, {"client-certificate": "pki/admin.crt", "client-key": "pki/admin.key"}))
    assert creds.server == "https://127.0.0.1:6443"
    assert (creds.ca_pem, creds.cert_pem, creds.key_pem) == (b"CA PEM", b"CERT", b"KEY")
    assert creds.namespace == "models" and creds.bearer_token() is None


def test_a_token_file_is_reread_after_rotation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    (tmp_path / "token").write_text("first\n")
    creds = credentials.load(_kubeconfig(tmp_path, {"tokenFile": "token"}))
    assert creds.bearer_token() == "first"
    (tmp_path / "token").write_text("second\n")
    assert creds.bearer_token() == "first"  # read at most once a minute
    monkeypatch.setattr(credentials, "TOKEN_REREAD_SECONDS", -1.0)
    assert creds.bearer_token() == "second"


def test_in_cluster_uses_the_address_the_kubelet_gives(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    for name, text in (("token", "sa-token"), ("ca.crt", "CA"), ("namespace", "lmscale")):
        (tmp_path / name).write_text(text)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    creds = credentials.in_cluster(tmp_path)
    assert creds.server == "https://[fd00::1]:6443"
    assert (creds.bearer_token(), creds.ca_pem, creds.namespace) == ("sa-token", b"CA", "lmscale")


@pytest.mark.parametrize(("user", "message"), [
    ({"exec": {"command": "aws"}}, "exec or auth-provider plugin"),
    ({"auth-provider": {"name": "gcp"}}, "exec or auth-provider plugin"),
])
def test_plugins_are_refused_with_what_to_use_instead(tmp_path: Path, user: dict[str, object],
                                                      message: str) -> None:
    with pytest.raises(CredentialsError, match=message) as raised:
        credentials.load(_kubeconfig(tmp_path, user))
    assert "kubectl create token" in str(raised.value)


def test_a_missing_or_broken_kubeconfig_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="cannot read kubeconfig .*missing"):
        credentials.load(tmp_path / "missing")
    with pytest.raises(CredentialsError, match="has no server"):
        credentials.load(_kubeconfig(tmp_path, {"token": "t"}, cluster={"server": ""}))
