"""Shared fixtures: the real local cluster (or any cluster KUBECONFIG names) and namespaces.

Set LMSCALE_TEST_KUBECONFIG=1 to run the cluster tests against the cluster that KUBECONFIG
names (a kind cluster made by `make kind-up`, with LMSCALE_PROMETHEUS_URL pointing at its
Prometheus). Otherwise the session starts the local control plane, once, and stops it at the
end when it started it. A cluster that cannot start fails the tests with the reason; they
never skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


class ClusterHandle:
    """What a test needs to reach the cluster under test."""

    def __init__(self, *, kubeconfig: Path, prometheus_url: str, kubectl: str,
                 prometheus_targets: Path | None) -> None:
        self.kubeconfig = kubeconfig
        self.prometheus_url = prometheus_url
        self.kubectl_path = kubectl
        self.prometheus_targets = prometheus_targets

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True
                ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.kubectl_path, "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin, capture_output=True, text=True,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {result.stderr}")
        return result


@pytest.fixture(scope="session")
def cluster() -> Iterator[ClusterHandle]:
    if os.environ.get("LMSCALE_TEST_KUBECONFIG"):
        yield ClusterHandle(
            kubeconfig=Path(os.environ.get("KUBECONFIG", Path.home() / ".kube" / "config")),
            prometheus_url=os.environ.get("LMSCALE_PROMETHEUS_URL", "http://127.0.0.1:9090"),
            kubectl=os.environ.get("KUBECTL", "kubectl"),
            prometheus_targets=Path(os.environ["LMSCALE_PROMETHEUS_TARGETS"])
            if os.environ.get("LMSCALE_PROMETHEUS_TARGETS") else None,
        )
        return
    from lmscale.devcluster import binaries
    from lmscale.devcluster import cluster as devcluster
    from lmscale.devcluster.layout import Layout

    layout = Layout.default()
    was_running = all(devcluster.status(layout).values())
    try:
        devcluster.up(layout)
    except Exception as error:  # noqa: BLE001 - any failure must fail the tests, loudly
        pytest.fail(f"the local cluster could not start: {error}", pytrace=False)
    handle = ClusterHandle(
        kubeconfig=layout.kubeconfig,
        prometheus_url=layout.prometheus_url,
        kubectl=str(binaries.find("kubectl", hack=layout.hack)),
        prometheus_targets=layout.prometheus_targets,
    )
    yield handle
    if not was_running and not os.environ.get("LMSCALE_KEEP_CLUSTER"):
        devcluster.down(layout)


@pytest.fixture(scope="session")
def lmscale_crds(cluster: ClusterHandle) -> None:
    """lmscale's CRDs from crds/, installed once and Established."""
    _install_crds(cluster)


def _install_crds(handle: ClusterHandle) -> None:
    crds = sorted((REPO / "crds").glob("*.yaml"))
    for crd in crds:
        handle.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
    for crd in crds:
        name = yaml.safe_load(crd.read_text())["metadata"]["name"]
        handle.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{name}")


@pytest.fixture(scope="session")
def kubeconfig_path(cluster: ClusterHandle) -> Path:
    return cluster.kubeconfig


@pytest.fixture(scope="session")
def kube_api(cluster: ClusterHandle, lmscale_crds: None) -> Iterator[Any]:
    """lmscale's own client for the cluster, with lmscale's CRDs installed."""
    from lmscale.k8s.client import Kube, make_api_client

    transport = make_api_client(cluster.kubeconfig)
    yield Kube(transport)
    transport.close()


@pytest.fixture
def namespace(cluster: ClusterHandle, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards without waiting."""
    name = f"t-{request.node.name[:40].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:5]}"
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in name)
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


class OperatorProcess:
    """`lmscale run` against the cluster under test, as a real process."""

    def __init__(self, cluster: ClusterHandle, log_path: Path) -> None:
        self.cluster = cluster
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.metrics_port = free_port()

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KUBECONFIG": str(self.cluster.kubeconfig),
            "LMSCALE_PROMETHEUS_URL": self.cluster.prometheus_url,
            "LMSCALE_SCALER_PERIOD_SECONDS": os.environ.get("LMSCALE_TEST_SCALER_PERIOD", "2"),
            "LMSCALE_METRICS_PORT": str(self.metrics_port),
            "LMSCALE_METRICS_MAX_AGE_SECONDS": "15",
        }

    def start(self, *extra: str) -> None:
        assert self.process is None, "already running"
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "lmscale"), "run", "--standalone", "-A", *extra],
            env=self.env(), stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    """A free loopback port for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The session's operator, once a test has started it (see `own_operators_only`).
_SESSION_OPERATORS: list[OperatorProcess] = []


@pytest.fixture(scope="session")
def operator(cluster: ClusterHandle, lmscale_crds: None,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """One lmscale operator for the whole session; tests isolate by namespace."""
    process = OperatorProcess(cluster, tmp_path_factory.mktemp("operator") / "operator.log")
    process.start()
    _SESSION_OPERATORS.append(process)
    yield process
    _SESSION_OPERATORS.remove(process)
    process.stop()


@pytest.fixture
def own_operators_only() -> Iterator[None]:
    """For tests that run operators of their own: the session's operator serves every
    namespace, so it would act on theirs too (writes, Events, takeovers). It is stopped for
    the test and started again after."""
    paused = [p for p in _SESSION_OPERATORS if p.process is not None]
    for process in paused:
        process.stop()
    yield
    for process in paused:
        process.start()


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
