"""The chart against a real API server: server-side dry-run, helm install, RBAC proven by
impersonating the chart's ServiceAccount, and two peered operator processes.

Each test installs its own release into its own namespace, with `watchNamespaces` set to that
namespace, so cluster-scoped names never collide between tests and everything the operator
may touch stays inside the test's namespace.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ClusterHandle, free_port

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "lmscale"
EXAMPLE = REPO / "examples" / "qwen2.5-7b-l4-tgi" / "lmd.yaml"


def _helm_binary() -> str:
    if explicit := os.environ.get("HELM"):
        return explicit
    from lmscale.devcluster import binaries

    return str(binaries.find("helm", hack=REPO / "hack" / "localcluster"))


@pytest.fixture(scope="session")
def helm(kubeconfig_path: Path) -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    binary = _helm_binary()
    # Helm keeps its own cache and config; keep them out of the user's home.
    home = Path(tempfile.mkdtemp(prefix="lmscale-helm-"))
    env = {**os.environ, "HELM_CACHE_HOME": str(home / "cache"),
           "HELM_CONFIG_HOME": str(home / "config"), "HELM_DATA_HOME": str(home / "data")}

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([binary, "--kubeconfig", str(kubeconfig_path), *args],
                                capture_output=True, text=True, env=env, timeout=300)
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)}: {result.stderr}")
        return result

    yield run
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def peering_crds(cluster: ClusterHandle) -> None:
    """kopf's peering CRDs from the chart (the LanguageModelDeployment CRD is the session's)."""
    cluster.kubectl("apply", "--server-side", "-f", str(CHART / "crds" / "kopf.dev_peerings.yaml"))
    for name in ("clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"):
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{name}")


def _release(namespace: str) -> str:
    # The namespace ends in a random suffix; a name containing "lmscale" is the full name.
    return f"lmscale-{namespace[-5:]}"


def _values(namespace: str, *extra: str) -> list[str]:
    sets = [f"watchNamespaces={{{namespace}}}", *extra]
    return [arg for item in sets for arg in ("--set", item)]


@pytest.fixture
def release(helm: Callable[..., subprocess.CompletedProcess[str]], namespace: str,
            peering_crds: None) -> Iterator[str]:
    """The chart installed into the test namespace, serving only that namespace."""
    name = _release(namespace)
    helm("install", name, str(CHART), "--namespace", namespace, "--skip-crds",
         *_values(namespace))
    yield name
    helm("uninstall", name, "--namespace", namespace, "--wait", "--timeout", "60s", check=False)


def _as_operator(cluster: ClusterHandle, namespace: str, release: str, *args: str
                 ) -> subprocess.CompletedProcess[str]:
    account = f"system:serviceaccount:{namespace}:{release}"
    return cluster.kubectl(*args, f"--as={account}", check=False)


def _can(cluster: ClusterHandle, namespace: str, release: str, verb: str, resource: str,
         *, in_namespace: str | None = None) -> bool:
    """`kubectl auth can-i` as the operator; `resource` may end in /NAME or :SUBRESOURCE."""
    resource, _, subresource = resource.partition(":")
    extra = ["-n", in_namespace] if in_namespace else []
    if subresource:
        extra.append(f"--subresource={subresource}")
    result = _as_operator(cluster, namespace, release, "auth", "can-i", verb, resource, *extra)
    return result.stdout.strip() == "yes"


# --- rendering and installing ------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["cluster-wide", "namespaced"])
def test_rendered_chart_passes_server_side_dry_run(
        cluster: ClusterHandle, helm: Callable[..., subprocess.CompletedProcess[str]],
        namespace: str, peering_crds: None, mode: str) -> None:
    sets = _values(namespace) if mode == "namespaced" else []
    rendered = helm("template", _release(namespace), str(CHART), "--namespace", namespace,
                    *sets).stdout
    result = cluster.kubectl("apply", "--server-side", "--dry-run=server", "-n", namespace,
                             "-f", "-", stdin=rendered)
    kinds = {doc["kind"] for doc in yaml.safe_load_all(rendered) if doc}
    assert {"Deployment", "ServiceAccount", "Service", "PodDisruptionBudget"} <= kinds
    assert "serverside-applied (server dry run)" in result.stdout


def test_helm_install_creates_the_operator(cluster: ClusterHandle, namespace: str,
                                           release: str) -> None:
    deployment = json.loads(cluster.kubectl("get", "deployment", release, "-n", namespace,
                                            "-o", "json").stdout)
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 2
    assert pod["serviceAccountName"] == release
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    cluster.kubectl("get", "kopfpeering", release, "-n", namespace)
    cluster.kubectl("get", "role", release, "-n", namespace)
    cluster.kubectl("get", "clusterrole", f"{release}-cluster")


def test_helm_upgrade_keeps_the_release_healthy(
        cluster: ClusterHandle, helm: Callable[..., subprocess.CompletedProcess[str]],
        namespace: str, release: str) -> None:
    helm("upgrade", release, str(CHART), "--namespace", namespace, "--skip-crds",
         *_values(namespace, "scaler.periodSeconds=15"))
    deployment = json.loads(cluster.kubectl("get", "deployment", release, "-n", namespace,
                                            "-o", "json").stdout)
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]
           ["containers"][0]["env"]}
    assert env["LMSCALE_SCALER_PERIOD_SECONDS"] == "15"
    history = helm("history", release, "--namespace", namespace, "-o", "json").stdout
    assert [entry["status"] for entry in json.loads(history)][-1] == "deployed"


# --- RBAC: sufficient and minimal --------------------------------------------------------------

ALLOWED = [
    ("get", "languagemodeldeployments.lmscale.dev"),
    ("watch", "languagemodeldeployments.lmscale.dev"),
    ("patch", "languagemodeldeployments.lmscale.dev:status"),
    ("create", "deployments.apps"), ("patch", "deployments.apps"), ("delete", "deployments.apps"),
    ("create", "services"), ("create", "persistentvolumeclaims"),
    ("create", "ingresses.networking.k8s.io"), ("create", "poddisruptionbudgets.policy"),
    ("patch", "pods"), ("create", "events"), ("create", "events.events.k8s.io"),
]
REFUSED = [
    ("get", "secrets"), ("list", "secrets"), ("watch", "secrets"),
    ("update", "languagemodeldeployments.lmscale.dev"),  # never writes spec
    ("delete", "languagemodeldeployments.lmscale.dev"),
    ("delete", "pods"), ("create", "pods"), ("create", "pods/exec"),
    ("patch", "configmaps"), ("create", "roles.rbac.authorization.k8s.io"),
    ("create", "serviceaccounts/token"), ("create", "statefulsets.apps"),
]


def test_service_account_may_do_what_the_operator_needs(
        cluster: ClusterHandle, namespace: str, release: str) -> None:
    missing = [(verb, res) for verb, res in ALLOWED
               if not _can(cluster, namespace, release, verb, res, in_namespace=namespace)]
    assert not missing
    # Peering: only the release's own peering object may be written.
    assert _can(cluster, namespace, release, "patch", f"kopfpeerings.kopf.dev/{release}",
                in_namespace=namespace)
    assert not _can(cluster, namespace, release, "patch", "kopfpeerings.kopf.dev/other",
                    in_namespace=namespace)
    for verb, res in [("list", "customresourcedefinitions.apiextensions.k8s.io"),
                      ("watch", "namespaces")]:
        assert _can(cluster, namespace, release, verb, res), (verb, res)


def test_service_account_is_refused_everything_else(
        cluster: ClusterHandle, namespace: str, release: str) -> None:
    granted = [(verb, res) for verb, res in REFUSED
               if _can(cluster, namespace, release, verb, res, in_namespace=namespace)]
    assert not granted
    # Outside its watched namespace it may do nothing with workloads.
    assert not _can(cluster, namespace, release, "create", "deployments.apps",
                    in_namespace="default")
    assert not _can(cluster, namespace, release, "get", "secrets", in_namespace="kube-system")
    # A real request, not only an access review: reading a Secret is forbidden.
    cluster.kubectl("create", "secret", "generic", "not-for-lmscale", "-n", namespace,
                    "--from-literal=k=v")
    result = _as_operator(cluster, namespace, release, "get", "secret", "not-for-lmscale",
                          "-n", namespace)
    assert result.returncode != 0 and "forbidden" in result.stderr.lower()


# --- the operator itself, run as the chart's ServiceAccount -----------------------------------


def _impersonating_kubeconfig(kubeconfig: Path, account: str, directory: Path) -> Path:
    """A copy of the admin kubeconfig that acts as `account` (users[].user.as)."""
    config = yaml.safe_load(kubeconfig.read_text())
    for user in config["users"]:
        user["user"]["as"] = account
    path = directory / "operator.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


@contextlib.contextmanager
def _operator(kubeconfig: Path, namespace: str, *, peering: str, priority: int,
              log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """One `lmscale run` process, as the chart runs it, on free local ports."""
    health = free_port()
    env = {**os.environ, "KUBECONFIG": str(kubeconfig),
           "LMSCALE_METRICS_PORT": str(free_port()), "LMSCALE_HEALTH_PORT": str(health),
           "LMSCALE_LOG_FORMAT": "text", "LMSCALE_LOG_LEVEL": "INFO"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "lmscale", "run", f"--namespace={namespace}",
             f"--peering={peering}", f"--priority={priority}",
             f"--liveness=http://127.0.0.1:{health}/healthz"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _wait_for(what: str, check: Callable[[], Any], *, timeout: float = 90.0,
              logs: tuple[Path, ...] = ()) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(1)
    tails = "".join(f"\n--- {log.name}:\n{log.read_text(errors='replace')[-3000:]}"
                    for log in logs if log.exists())
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{tails}")


def _apply_example(cluster: ClusterHandle, namespace: str, name: str) -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"]["name"] = name
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc))


def _children_exist(cluster: ClusterHandle, namespace: str, name: str) -> bool:
    out = cluster.kubectl("get", "deployments,services", "-n", namespace,
                          "-l", f"lmscale.dev/deployment={name}", "-o", "name").stdout
    return "deployment" in out and "service" in out


def test_operator_reconciles_with_only_the_charts_rbac(
        cluster: ClusterHandle, kubeconfig_path: Path, namespace: str, release: str,
        tmp_path: Path) -> None:
    account = f"system:serviceaccount:{namespace}:{release}"
    kubeconfig = _impersonating_kubeconfig(kubeconfig_path, account, tmp_path)
    log = tmp_path / "operator.log"
    with _operator(kubeconfig, namespace, peering=release, priority=100, log=log):
        _apply_example(cluster, namespace, "rbac-proof")
        _wait_for("the example's Deployment and Service",
                  lambda: _children_exist(cluster, namespace, "rbac-proof"))
        _wait_for("status from the operator", lambda: json.loads(cluster.kubectl(
            "get", "lmd", "rbac-proof", "-n", namespace, "-o", "json").stdout
        ).get("status", {}).get("observedGeneration"))
    text = log.read_text(errors="replace")
    assert "403" not in text and "Forbidden" not in text, text[-4000:]


def _active(log: Path) -> bool:
    """Whether kopf's last word on peering in this log was to resume, not to pause.

    kopf starts paused when it finds peers, so a standby that never acted logs neither line.
    """
    text = log.read_text(errors="replace")
    return text.rfind("Resuming operations") > text.rfind("Pausing operations")


def _example_files() -> list[Path]:
    return sorted((REPO / "examples").glob("*/lmd.yaml"))


def test_every_example_reconciles_as_the_service_account(
        cluster: ClusterHandle, kubeconfig_path: Path, namespace: str, release: str,
        tmp_path: Path) -> None:
    account = f"system:serviceaccount:{namespace}:{release}"
    kubeconfig = _impersonating_kubeconfig(kubeconfig_path, account, tmp_path)
    log = tmp_path / "operator.log"
    names = [yaml.safe_load(path.read_text())["metadata"]["name"] for path in _example_files()]
    with _operator(kubeconfig, namespace, peering=release, priority=100, log=log):
        for path in _example_files():
            cluster.kubectl("apply", "-n", namespace, "-f", str(path))
        for name in names:
            _wait_for(f"children of {name}", lambda n=name: _children_exist(cluster, namespace, n),
                      logs=(log,))
            _wait_for(f"status of {name}", lambda n=name: json.loads(cluster.kubectl(
                "get", "lmd", n, "-n", namespace, "-o", "json").stdout
            ).get("status", {}).get("observedGeneration"), logs=(log,))
    for name in names:
        status = json.loads(cluster.kubectl("get", "lmd", name, "-n", namespace,
                                            "-o", "json").stdout)["status"]
        invalid = [c for c in status.get("conditions", [])
                   if c["type"] == "InvalidSpec" and c["status"] == "True"]
        assert not invalid, f"{name}: {invalid}"
    text = log.read_text(errors="replace")
    assert "Forbidden" not in text, text[-4000:]


def _peers(cluster: ClusterHandle, namespace: str, name: str) -> dict[str, Any]:
    body = json.loads(cluster.kubectl("get", "kopfpeering", name, "-n", namespace,
                                      "-o", "json").stdout)
    return dict(body.get("status") or {})


def test_two_operators_one_acts_and_the_other_takes_over(
        cluster: ClusterHandle, kubeconfig_path: Path, namespace: str, release: str,
        tmp_path: Path) -> None:
    account = f"system:serviceaccount:{namespace}:{release}"
    kubeconfig = _impersonating_kubeconfig(kubeconfig_path, account, tmp_path)
    high_log, low_log = tmp_path / "high.log", tmp_path / "low.log"
    with _operator(kubeconfig, namespace, peering=release, priority=200, log=low_log) as _low, \
         _operator(kubeconfig, namespace, peering=release, priority=300, log=high_log) as high:
        logs = (high_log, low_log)
        _wait_for("both operators in the peering object",
                  lambda: len(_peers(cluster, namespace, release)) == 2, logs=logs)
        _wait_for("the higher priority to act",
                  lambda: _active(high_log), logs=logs)
        # kopf pauses a lower priority as soon as it sees the higher one's keep-alive.
        _wait_for("the lower priority to stand by", lambda: not _active(low_log), logs=logs)
        _apply_example(cluster, namespace, "peer-one")
        _wait_for("the active operator to reconcile",
                  lambda: _children_exist(cluster, namespace, "peer-one"), logs=logs)
        assert "peer-one" not in low_log.read_text(errors="replace"), "the paused peer acted"

        # Stop the active one: the standby resumes and serves a new resource.
        high.send_signal(signal.SIGTERM)
        high.wait(timeout=60)
        _wait_for("the standby to resume", lambda: _active(low_log), timeout=150, logs=logs)
        _apply_example(cluster, namespace, "peer-two")
        _wait_for("the standby to reconcile",
                  lambda: _children_exist(cluster, namespace, "peer-two"), logs=logs)
