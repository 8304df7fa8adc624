"""The chart against a real API server: server-side dry-run, helm install, RBAC proven by
kubectl's impersonation (access reviews) and the operator run with a real token of the
chart's ServiceAccount, and two operator processes electing a leader on a Lease.

Each test installs its own release into its own namespace, with `watchNamespaces` set to that
namespace, so cluster-scoped names never collide between tests and everything the operator
may touch stays inside the test's namespace.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ClusterHandle, free_port

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("own_operators_only")]

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "lmscale"
EXAMPLE = REPO / "examples" / "qwen2.5-7b-l4-tgi" / "lmd.yaml"


def _release(namespace: str) -> str:
    # The namespace ends in a random suffix; a name containing "lmscale" is the full name.
    return f"lmscale-{namespace[-5:]}"


def _values(namespace: str, *extra: str) -> list[str]:
    sets = [f"watchNamespaces={{{namespace}}}", *extra]
    return [arg for item in sets for arg in ("--set", item)]


@pytest.fixture
def release(helm: Callable[..., subprocess.CompletedProcess[str]], namespace: str,
            lmscale_crds: None, request: pytest.FixtureRequest) -> Iterator[str]:
    """The chart installed into the test namespace, serving only that namespace; a test
    marked `chart_values("key=value", ...)` adds values."""
    name = _release(namespace)
    marker = request.node.get_closest_marker("chart_values")
    helm("install", name, str(CHART), "--namespace", namespace, "--skip-crds",
         *_values(namespace, *(marker.args if marker else ())))
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
        namespace: str, mode: str) -> None:
    sets = _values(namespace) if mode == "namespaced" else []
    rendered = helm("template", _release(namespace), str(CHART), "--namespace", namespace,
                    *sets).stdout
    result = cluster.kubectl("apply", "--server-side", "--dry-run=server", "-n", namespace,
                             "-f", "-", stdin=rendered)
    kinds = {doc["kind"] for doc in yaml.safe_load_all(rendered) if doc}
    assert {"Deployment", "ServiceAccount", "Service", "PodDisruptionBudget"} <= kinds
    assert "serverside-applied (server dry run)" in result.stdout


def test_monitoring_objects_pass_the_prometheus_operators_own_schemas(
        cluster: ClusterHandle, helm: Callable[..., subprocess.CompletedProcess[str]],
        namespace: str) -> None:
    """PodMonitor, ServiceMonitor and PrometheusRule against the Prometheus Operator's CRDs
    (from its Go module, installed by the local cluster), as kube-prometheus-stack has them."""
    sets = ["podMonitor.enabled=true", "metrics.serviceMonitor.enabled=true",
            "prometheusRule.enabled=true", "podMonitor.labels.release=kube-prometheus-stack",
            "activator.enabled=true", "activator.serviceMonitor.enabled=true"]
    rendered = helm("template", _release(namespace), str(CHART), "--namespace", namespace,
                    *[arg for item in sets for arg in ("--set", item)]).stdout
    monitoring = [doc for doc in yaml.safe_load_all(rendered)
                  if doc and doc["apiVersion"].startswith("monitoring.coreos.com/")]
    assert {doc["kind"] for doc in monitoring} == {"PodMonitor", "ServiceMonitor",
                                                    "PrometheusRule"}
    result = cluster.kubectl("apply", "--server-side", "--dry-run=server", "-n", namespace,
                             "-f", "-", stdin=yaml.safe_dump_all(monitoring))
    assert len(monitoring) == 4  # the operator's ServiceMonitor and the activator's
    assert result.stdout.count("serverside-applied (server dry run)") == 4, result.stdout
    # The schemas are strict: a field the Prometheus Operator does not know is refused.
    broken = [{**doc, "spec": {**doc["spec"], "podTargetLabel": ["typo"]}}
              for doc in monitoring if doc["kind"] == "PodMonitor"]
    refused = cluster.kubectl("apply", "--server-side", "--dry-run=server", "-n", namespace,
                              "-f", "-", stdin=yaml.safe_dump_all(broken), check=False)
    assert refused.returncode != 0 and "podTargetLabel" in refused.stderr, refused


def test_helm_install_creates_the_operator(cluster: ClusterHandle, namespace: str,
                                           release: str) -> None:
    deployment = json.loads(cluster.kubectl("get", "deployment", release, "-n", namespace,
                                            "-o", "json").stdout)
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 2
    assert pod["serviceAccountName"] == release
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    cluster.kubectl("get", "role", f"{release}-leader-election", "-n", namespace)
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
    # a slice to remove when a model leaves the activator
    ("get", "endpointslices.discovery.k8s.io"), ("delete", "endpointslices.discovery.k8s.io"),
]
REFUSED = [
    ("get", "secrets"), ("list", "secrets"), ("watch", "secrets"),
    ("update", "languagemodeldeployments.lmscale.dev"),  # never writes spec
    ("delete", "languagemodeldeployments.lmscale.dev"),
    ("delete", "pods"), ("create", "pods"), ("create", "pods/exec"),
    ("patch", "configmaps"), ("create", "roles.rbac.authorization.k8s.io"),
    ("create", "serviceaccounts/token"), ("create", "statefulsets.apps"),
    # writing slices (any Service's traffic) only with activator.enabled
    ("create", "endpointslices.discovery.k8s.io"), ("patch", "endpointslices.discovery.k8s.io"),
]


def test_service_account_may_do_what_the_operator_needs(
        cluster: ClusterHandle, namespace: str, release: str) -> None:
    missing = [(verb, res) for verb, res in ALLOWED
               if not _can(cluster, namespace, release, verb, res, in_namespace=namespace)]
    assert not missing
    # Leader election: only the release's own Lease may be renewed, in its own namespace.
    for verb in ("get", "update"):
        assert _can(cluster, namespace, release, verb, f"leases.coordination.k8s.io/{release}",
                    in_namespace=namespace)
    assert _can(cluster, namespace, release, "create", "leases.coordination.k8s.io",
                in_namespace=namespace)
    assert not _can(cluster, namespace, release, "update", "leases.coordination.k8s.io/other",
                    in_namespace=namespace)
    assert not _can(cluster, namespace, release, "delete",
                    f"leases.coordination.k8s.io/{release}", in_namespace=namespace)
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


def _token_kubeconfig(cluster: ClusterHandle, kubeconfig: Path, namespace: str,
                      account: str, directory: Path) -> Path:
    """A kubeconfig that authenticates with a real token of the ServiceAccount (as a pod's
    would), not impersonation: the Python client ignores `users[].user.as`."""
    token = cluster.kubectl("create", "token", account, "-n", namespace,
                            "--duration=1h").stdout.strip()
    config = yaml.safe_load(kubeconfig.read_text())
    config["users"] = [{"name": account, "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = account
    path = directory / "operator.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


@contextlib.contextmanager
def _operator(kubeconfig: Path, namespace: str, *, lease: str, log: Path,
              pod_name: str = "", **extra_env: str) -> Iterator[subprocess.Popen[bytes]]:
    """One `lmscale run` process, as the chart runs it, on free local ports."""
    health = free_port()
    env = {**os.environ, **extra_env, "KUBECONFIG": str(kubeconfig),
           "LMSCALE_METRICS_PORT": str(free_port()), "LMSCALE_HEALTH_PORT": str(health),
           "LMSCALE_LOG_FORMAT": "text", "LMSCALE_LOG_LEVEL": "INFO",
           "POD_NAMESPACE": namespace, "POD_NAME": pod_name or log.stem}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "lmscale", "run", f"--namespace={namespace}",
             f"--lease={lease}", f"--liveness=http://127.0.0.1:{health}/healthz"],
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
    kubeconfig = _token_kubeconfig(cluster, kubeconfig_path, namespace, release, tmp_path)
    log = tmp_path / "operator.log"
    with _operator(kubeconfig, namespace, lease=release, log=log):
        _apply_example(cluster, namespace, "rbac-proof")
        _wait_for("the example's Deployment and Service",
                  lambda: _children_exist(cluster, namespace, "rbac-proof"))
        _wait_for("status from the operator", lambda: json.loads(cluster.kubectl(
            "get", "lmd", "rbac-proof", "-n", namespace, "-o", "json").stdout
        ).get("status", {}).get("observedGeneration"))
    text = log.read_text(errors="replace")
    # a refusal reads "HTTP 403 Forbidden" (a bare 403 can be a log line's milliseconds)
    assert "HTTP 403" not in text and "Forbidden" not in text, text[-4000:]


def _example_files() -> list[Path]:
    return sorted((REPO / "examples").glob("*/lmd.yaml"))


# One example routes through an InferencePool: its endpoint picker's Role is a grant the
# chart gives only when asked.
@pytest.mark.chart_values("routing.inferencePool=true")
def test_every_example_reconciles_as_the_service_account(
        cluster: ClusterHandle, kubeconfig_path: Path, namespace: str, release: str,
        tmp_path: Path) -> None:
    kubeconfig = _token_kubeconfig(cluster, kubeconfig_path, namespace, release, tmp_path)
    log = tmp_path / "operator.log"
    names = [yaml.safe_load(path.read_text())["metadata"]["name"] for path in _example_files()]
    with _operator(kubeconfig, namespace, lease=release, log=log):
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


def _holder(cluster: ClusterHandle, namespace: str, name: str) -> str:
    result = cluster.kubectl("get", "lease", name, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        return ""
    return str((json.loads(result.stdout).get("spec") or {}).get("holderIdentity") or "")


def test_two_operators_one_acts_and_the_other_takes_over(
        cluster: ClusterHandle, kubeconfig_path: Path, namespace: str, release: str,
        tmp_path: Path) -> None:
    kubeconfig = _token_kubeconfig(cluster, kubeconfig_path, namespace, release, tmp_path)
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    logs = (first_log, second_log)
    with _operator(kubeconfig, namespace, lease=release, log=first_log) as first:
        _wait_for("the first operator to hold the Lease",
                  lambda: _holder(cluster, namespace, release) == "first", logs=logs)
        with _operator(kubeconfig, namespace, lease=release, log=second_log):
            _wait_for("the second to wait as a candidate",
                      lambda: "waiting to lead" in second_log.read_text(), logs=logs)
            _apply_example(cluster, namespace, "peer-one")
            _wait_for("the leader to reconcile",
                      lambda: _children_exist(cluster, namespace, "peer-one"), logs=logs)
            assert _holder(cluster, namespace, release) == "first"
            assert "peer-one" not in second_log.read_text(errors="replace"), "the standby acted"
            assert "leading" not in second_log.read_text(errors="replace")

            # Stop the leader: it hands the Lease back, the standby takes it at its next try.
            first.send_signal(signal.SIGTERM)
            first.wait(timeout=30)
            assert "released lease" in first_log.read_text(errors="replace")
            _wait_for("the standby to lead",
                      lambda: _holder(cluster, namespace, release) == "second",
                      timeout=20, logs=logs)
            _apply_example(cluster, namespace, "peer-two")
            _wait_for("the standby to reconcile",
                      lambda: _children_exist(cluster, namespace, "peer-two"), logs=logs)


# --- the activator: the operator's slices and the activator's own rights ----------------------


@pytest.mark.chart_values("activator.enabled=true")
def test_behind_the_activator_both_accounts_have_what_they_need_and_no_more(
        cluster: ClusterHandle, kubeconfig_path: Path, namespace: str, release: str,
        tmp_path: Path) -> None:
    activator = f"{release}-activator"
    for verb in ("create", "patch"):
        assert _can(cluster, namespace, release, verb, "endpointslices.discovery.k8s.io",
                    in_namespace=namespace)
    for res in ("services", "endpointslices.discovery.k8s.io", "pods"):
        assert _can(cluster, namespace, activator, "list", res, in_namespace="default"), res
    assert _can(cluster, namespace, activator, "patch", "languagemodeldeployments.lmscale.dev",
                in_namespace=namespace)
    for verb, res in [("get", "secrets"), ("watch", "services"), ("patch", "services"),
                      ("update", "languagemodeldeployments.lmscale.dev"),
                      ("get", "languagemodeldeployments.lmscale.dev"),
                      ("patch", "languagemodeldeployments.lmscale.dev:status"),
                      ("create", "endpointslices.discovery.k8s.io"),
                      ("watch", "endpointslices.discovery.k8s.io"), ("get", "pods"),
                      ("watch", "pods")]:
        assert not _can(cluster, namespace, activator, verb, res, in_namespace=namespace), res

    # Real tokens: the operator writes the slice, the activator learns the model and asks
    # for a wake, neither is refused anything.
    operator_config = _token_kubeconfig(cluster, kubeconfig_path, namespace, release, tmp_path)
    (tmp_path / "activator").mkdir()
    activator_config = _token_kubeconfig(cluster, kubeconfig_path, namespace, activator,
                                         tmp_path / "activator")
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"]["name"] = "zero"
    doc["spec"]["accelerator"] = {"type": "nvidia-h100-80gb", "gpusPerReplica": 1}  # kwok's
    doc["spec"]["scaling"]["scaleToZero"] = {"enabled": True, "idleSeconds": 600}
    doc["spec"]["routing"] = {"holdTimeoutSeconds": 5}
    logs = (tmp_path / "operator.log", tmp_path / "activator.log")
    admin, port = free_port(), free_port()
    with _operator(operator_config, namespace, lease=release, log=logs[0],
                   LMSCALE_ACTIVATOR_SERVICE=f"{namespace}/{activator}"), \
            logs[1].open("wb") as out:
        gateway = subprocess.Popen(
            [sys.executable, "-m", "lmscale", "gateway", "--discover", "--discover-interval",
             "1", "--kubeconfig", str(activator_config), "--listen", f"127.0.0.1:{port}",
             "--admin-listen", f"127.0.0.1:{admin}"], stdout=out, stderr=subprocess.STDOUT)
        try:
            cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc))
            _wait_for("the slice on the Ready pod", lambda: cluster.kubectl(
                "get", "endpointslices", "-n", namespace, "-l",
                "kubernetes.io/service-name=zero,lmscale.dev/endpoints=pods", "-o", "name",
                check=False).stdout.strip(), logs=logs)

            def learned() -> bool:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics",
                                                timeout=5) as page:
                        return f'model="{namespace}/zero"' in page.read().decode()
                except OSError:
                    return False

            _wait_for("the activator learning the model", learned, logs=logs)
            with contextlib.suppress(OSError):  # held, then 503 at the 5 s hold timeout
                urllib.request.urlopen(urllib.request.Request(
                    f"http://127.0.0.1:{port}/v1/completions", data=b"{}", method="POST",
                    headers={"Host": f"zero.{namespace}.svc"}), timeout=15).read()
            _wait_for("the wake request on the resource", lambda: "wake-requested-at" in
                      cluster.kubectl("get", "lmd", "zero", "-n", namespace, "-o",
                                      "jsonpath={.metadata.annotations}").stdout, logs=logs)
        finally:
            gateway.terminate()
            gateway.wait(timeout=30)
    for log in logs:
        text = log.read_text(errors="replace")
        assert "HTTP 403" not in text and "Forbidden" not in text, text[-4000:]
