"""Renders the Helm chart with `helm template` and checks what an install would create:
hardened operator pods, least-privilege RBAC, leader election, and the settings the operator reads.

helm comes from $HELM, else the version cache that hack/localcluster/build.sh fills
(~/.cache/lmscale/bin/helm-<HELM_VERSION>/helm), else PATH.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "lmscale"
NAMESPACE = "lmscale-system"
Manifest = dict[str, Any]


def _helm_version() -> str:
    for line in (REPO / "hack" / "localcluster" / "versions.env").read_text().splitlines():
        if line.startswith("HELM_VERSION="):
            return line.partition("=")[2].strip()
    raise AssertionError("HELM_VERSION missing from hack/localcluster/versions.env")


def _find_helm() -> str | None:
    if explicit := os.environ.get("HELM"):
        return explicit
    cache_root = os.environ.get("LMSCALE_BIN_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lmscale" / "bin"
    )
    cached = Path(cache_root) / f"helm-{_helm_version()}" / "helm"
    if cached.is_file():
        return str(cached)
    return shutil.which("helm")


HELM = _find_helm()
pytestmark = pytest.mark.skipif(
    HELM is None, reason="helm not found: set $HELM or run `bash hack/localcluster/build.sh helm`"
)


def _helm(*args: str) -> subprocess.CompletedProcess[str]:
    assert HELM is not None
    return subprocess.run([HELM, *args], capture_output=True, text=True, timeout=60)


@functools.cache
def _render_cached(sets: tuple[str, ...]) -> tuple[Manifest, ...]:
    args = ["template", "lmscale", str(CHART), "--namespace", NAMESPACE]
    for item in sets:
        args += ["--set", item]
    result = _helm(*args)
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def render(*sets: str) -> list[Manifest]:
    return list(_render_cached(tuple(sets)))


def render_error(*sets: str) -> str:
    args = ["template", "lmscale", str(CHART), "--namespace", NAMESPACE]
    for item in sets:
        args += ["--set", item]
    result = _helm(*args)
    assert result.returncode != 0, "expected helm to refuse these values"
    return result.stderr


def of_kind(docs: list[Manifest], kind: str) -> list[Manifest]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: list[Manifest], kind: str) -> Manifest:
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def container(docs: list[Manifest]) -> Manifest:
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert len(pod["containers"]) == 1
    return pod["containers"][0]


def env_of(docs: list[Manifest]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(docs)["env"]}


def rules_of(docs: list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    for doc in docs:
        if doc["kind"] in ("ClusterRole", "Role"):
            where = doc["metadata"].get("namespace", "<cluster>")
            for rule in doc.get("rules", []):
                yield where, rule


def allows(rules: list[Manifest], group: str, resource: str, verb: str) -> bool:
    return any(
        group in r.get("apiGroups", []) and resource in r.get("resources", [])
        and verb in r.get("verbs", [])
        for r in rules
    )


# --- lint -----------------------------------------------------------------------------------


@pytest.mark.parametrize("sets", [
    pytest.param((), id="defaults"),
    pytest.param(("watchNamespaces={team-a,team-b}",), id="watch-namespaces"),
    pytest.param(("dashboards.enabled=true", "prometheusRule.enabled=true",
                  "metrics.serviceMonitor.enabled=true"), id="monitoring"),
    pytest.param(("activator.enabled=true", "activator.serviceMonitor.enabled=true"),
                 id="activator-monitoring"),
])
def test_helm_lint_strict(sets: tuple[str, ...]) -> None:
    args = ["lint", str(CHART), "--strict"]
    for item in sets:
        args += ["--set", item]
    result = _helm(*args)
    assert result.returncode == 0, result.stdout + result.stderr


def test_chart_and_image_versions() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert (chart["version"], chart["appVersion"]) == ("0.1.0", "0.1.0")
    assert container(render())["image"] == "ghcr.io/lmscale/lmscale:0.1.0"
    digest = "sha256:" + "a" * 64
    pinned = container(render(f"image.digest={digest}"))["image"]
    assert pinned == f"ghcr.io/lmscale/lmscale@{digest}"


# --- the operator pod -------------------------------------------------------------------------


def test_pod_is_hardened() -> None:
    docs = render()
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container(docs)["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert "add" not in sc["capabilities"]
    assert not sc.get("privileged", False)


def test_resources_have_requests_and_limits() -> None:
    resources = container(render())["resources"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[kind]), kind


def test_probes_use_kopf_health_endpoint() -> None:
    c = container(render())
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"metrics": 8080, "health": 8081}
    assert "--liveness=http://0.0.0.0:8081/healthz" in c["args"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_health_port_follows_values() -> None:
    c = container(render("health.port=9091"))
    assert "--liveness=http://0.0.0.0:9091/healthz" in c["args"]
    assert env_of(render("health.port=9091"))["LMSCALE_HEALTH_PORT"] == "9091"


def test_default_runs_two_leader_elected_replicas_cluster_wide() -> None:
    docs = render()
    assert one(docs, "Deployment")["spec"]["replicas"] == 2
    args = container(docs)["args"]
    assert args[0] == "run"
    assert "--all-namespaces" in args and "--lease=lmscale" in args
    assert not any(a.startswith("--namespace") for a in args)
    env = env_of(docs)
    # The Lease lives in the pod's own namespace, held under the pod's name.
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert one(docs, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    assert not [d for d in docs if "Peering" in d["kind"]]


def test_single_replica_can_run_standalone() -> None:
    docs = render("replicaCount=1", "leaderElection.enabled=false")
    assert "--standalone" in container(docs)["args"]
    assert env_of(docs)["LMSCALE_LEASE"] == "standalone"
    assert not of_kind(docs, "PodDisruptionBudget")
    assert not [r for _, r in rules_of(docs) if "leases" in r["resources"]]


def test_several_replicas_without_leader_election_are_refused() -> None:
    assert "leaderElection" in render_error("leaderElection.enabled=false")


# --- settings --------------------------------------------------------------------------------


def _documented_variables() -> set[str]:
    text = (REPO / "docs" / "architecture.md").read_text()
    section = text.split("## Operator settings", 1)[1]
    return set(re.findall(r"LMSCALE_[A-Z_]+", section))


def test_env_matches_operator_settings_contract() -> None:
    env = env_of(render())
    assert env["LMSCALE_PROMETHEUS_URL"] == "http://prometheus-operated.monitoring.svc:9090"
    assert env["LMSCALE_SCALER_PERIOD_SECONDS"] == "10"
    assert env["LMSCALE_LOG_LEVEL"] == "INFO" and env["LMSCALE_LOG_FORMAT"] == "json"
    assert env["LMSCALE_METRICS_PORT"] == "8080" and env["LMSCALE_HEALTH_PORT"] == "8081"
    assert env["LMSCALE_DEPLOYMENT_LABEL"] == "lmscale_dev_deployment"
    assert env["LMSCALE_LEASE"] == "lmscale" and env["LMSCALE_WATCH_NAMESPACES"] == ""
    # Every LMSCALE_* variable the chart sets is one the operator reads.
    assert {k for k in env if k.startswith("LMSCALE_")} <= _documented_variables()
    assert "LMSCALE_DCGM_POD_LABEL" not in env  # unset: DCGM uses the pod label names


def test_dcgm_labels_for_the_gpu_operator_servicemonitor() -> None:
    env = env_of(render("prometheus.labels.dcgmNamespace=exported_namespace",
                        "prometheus.labels.dcgmPod=exported_pod"))
    assert env["LMSCALE_DCGM_NAMESPACE_LABEL"] == "exported_namespace"
    assert env["LMSCALE_DCGM_POD_LABEL"] == "exported_pod"
    assert {"LMSCALE_DCGM_NAMESPACE_LABEL", "LMSCALE_DCGM_POD_LABEL"} <= _documented_variables()


def test_settings_come_from_values() -> None:
    env = env_of(render(
        "prometheus.url=https://prom.example:9090", "scaler.periodSeconds=15",
        "logging.level=DEBUG", "logging.format=text", "prometheus.labels.pod=kubernetes_pod_name",
        "prometheus.metricsMaxAgeSeconds=90",
    ))
    assert env["LMSCALE_PROMETHEUS_URL"] == "https://prom.example:9090"
    assert env["LMSCALE_SCALER_PERIOD_SECONDS"] == "15"
    assert (env["LMSCALE_LOG_LEVEL"], env["LMSCALE_LOG_FORMAT"]) == ("DEBUG", "text")
    assert env["LMSCALE_POD_LABEL"] == "kubernetes_pod_name"
    assert env["LMSCALE_METRICS_MAX_AGE_SECONDS"] == "90"


def test_bearer_token_is_a_mounted_file_without_secret_rbac() -> None:
    docs = render("prometheus.auth.type=bearer", "prometheus.auth.existingSecret=prom-token")
    token_file = env_of(docs)["LMSCALE_PROMETHEUS_BEARER_TOKEN_FILE"]
    assert token_file == "/etc/lmscale/prometheus-auth/token"
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "prometheus-auth")
    assert volume["secret"]["secretName"] == "prom-token"
    mount = next(m for m in container(docs)["volumeMounts"] if m["name"] == "prometheus-auth")
    assert mount["readOnly"] is True
    assert not [r for _, r in rules_of(docs) if "secrets" in r.get("resources", [])]


def test_basic_auth_comes_from_secret_key_refs() -> None:
    env = env_of(render("prometheus.auth.type=basic", "prometheus.auth.existingSecret=prom-basic"))
    for variable, key in [("USERNAME", "username"), ("PASSWORD", "password")]:
        ref = {"secretKeyRef": {"name": "prom-basic", "key": key}}
        assert env[f"LMSCALE_PROMETHEUS_{variable}"] == ref


def test_auth_without_secret_is_refused() -> None:
    assert "existingSecret" in render_error("prometheus.auth.type=bearer")


@pytest.mark.parametrize(("source", "volume_key"), [
    pytest.param("configMap", "configMap", id="configmap"),
    pytest.param("secret", "secret", id="secret"),
])
def test_ca_bundle_is_mounted(source: str, volume_key: str) -> None:
    docs = render(f"prometheus.ca.{source}=prom-ca")
    assert env_of(docs)["LMSCALE_PROMETHEUS_CA_FILE"] == "/etc/lmscale/prometheus-ca/ca.crt"
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert any(v["name"] == "prometheus-ca" and volume_key in v for v in pod["volumes"])


def test_schema_rejects_unknown_keys_and_bad_values() -> None:
    assert "replicas" in render_error("replicas=3")
    assert "format" in render_error("logging.format=xml")
    assert "namespace" in render_error("prometheus.labels.namespace=not-a-label")


# --- RBAC ------------------------------------------------------------------------------------

# (apiGroup, resource, verb) the operator needs, per the reconcile and scaler contracts.
NEEDED = [
    ("lmscale.dev", "languagemodeldeployments", v) for v in ("get", "list", "watch", "patch")
] + [("lmscale.dev", "languagemodeldeployments/status", "patch")] + [
    (g, r, v)
    for g, r in [("apps", "deployments"), ("", "services"), ("", "persistentvolumeclaims"),
                 ("networking.k8s.io", "ingresses"), ("policy", "poddisruptionbudgets")]
    for v in ("get", "list", "watch", "create", "patch", "delete")
] + [("", "pods", v) for v in ("get", "list", "watch", "patch")] + [
    (g, "events", v) for g in ("", "events.k8s.io") for v in ("create", "patch")
]
CLUSTER_NEEDED = [
    ("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("get", "list", "watch")
] + [("", "namespaces", v) for v in ("list", "watch")]


@pytest.mark.parametrize("sets", [
    pytest.param((), id="cluster-wide"),
    pytest.param(("watchNamespaces={team-a,team-b}",), id="namespaced"),
    pytest.param(("prometheus.auth.type=bearer", "prometheus.auth.existingSecret=prom-token",
                  "prometheus.auth.grantSecretRead=true"), id="secret-read"),
])
def test_rbac_has_no_wildcards_and_no_broad_secret_access(sets: tuple[str, ...]) -> None:
    for where, rule in rules_of(render(*sets)):
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule.get(field, []), (where, rule)
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule
        if "update" in rule["verbs"]:
            # Only the one named leader Lease is ever updated (renewed).
            assert rule["resources"] == ["leases"] and rule["resourceNames"] == ["lmscale"], rule
        if "secrets" in rule["resources"]:
            # Only ever one named Secret, read-only.
            assert rule["resourceNames"] == ["prom-token"] and rule["verbs"] == ["get"], rule


def test_cluster_wide_rbac_covers_what_the_operator_does() -> None:
    docs = render()
    role = one(docs, "ClusterRole")
    for need in NEEDED + CLUSTER_NEEDED:
        assert allows(role["rules"], *need), need
    # The operator never writes spec: no update verb on its own resource.
    assert not allows(role["rules"], "lmscale.dev", "languagemodeldeployments", "update")
    binding = one(docs, "ClusterRoleBinding")
    subject = {"kind": "ServiceAccount", "name": "lmscale", "namespace": NAMESPACE}
    assert binding["subjects"] == [subject]
    assert [r["metadata"]["name"] for r in of_kind(docs, "Role")] == ["lmscale-leader-election"]


@pytest.mark.parametrize("sets", [
    pytest.param((), id="cluster-wide"),
    pytest.param(("watchNamespaces={team-a,team-b}",), id="namespaced"),
])
def test_leader_election_may_touch_only_its_own_lease(sets: tuple[str, ...]) -> None:
    docs = render(*sets)
    lease_rules = [(where, r) for where, r in rules_of(docs) if "leases" in r["resources"]]
    # In the release namespace only: create (a name cannot limit it), then get and update
    # of the release's own Lease; no list, watch, patch or delete.
    assert lease_rules == [
        (NAMESPACE, {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                     "verbs": ["create"]}),
        (NAMESPACE, {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                     "resourceNames": ["lmscale"], "verbs": ["get", "update"]}),
    ]
    binding = [b for b in of_kind(docs, "RoleBinding")
               if b["metadata"]["name"] == "lmscale-leader-election"]
    assert binding and binding[0]["subjects"][0]["name"] == "lmscale"


def test_watch_namespaces_switches_to_namespaced_roles() -> None:
    docs = render("watchNamespaces={team-a,team-b}")
    args = container(docs)["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args
    assert "--all-namespaces" not in args
    assert env_of(docs)["LMSCALE_WATCH_NAMESPACES"] == "team-a,team-b"
    roles = {r["metadata"]["namespace"]: r for r in of_kind(docs, "Role")
             if r["metadata"]["name"] == "lmscale"}
    assert set(roles) == {"team-a", "team-b"}
    for role in roles.values():
        for need in NEEDED:
            assert allows(role["rules"], *need), need
    bindings = {b["metadata"]["namespace"] for b in of_kind(docs, "RoleBinding")
                if b["metadata"]["name"] == "lmscale"}
    assert bindings == {"team-a", "team-b"}
    # What stays cluster-scoped is only the reads kopf needs there.
    cluster_role = one(docs, "ClusterRole")
    for need in CLUSTER_NEEDED:
        assert allows(cluster_role["rules"], *need), need
    for need in NEEDED:
        assert not allows(cluster_role["rules"], *need), need


def test_secret_read_is_opt_in_and_by_name() -> None:
    docs = render("prometheus.auth.type=bearer", "prometheus.auth.existingSecret=prom-token",
                  "prometheus.auth.grantSecretRead=true")
    secret_rules = [(w, r) for w, r in rules_of(docs) if "secrets" in r["resources"]]
    assert secret_rules == [(NAMESPACE, {"apiGroups": [""], "resources": ["secrets"],
                                         "resourceNames": ["prom-token"], "verbs": ["get"]})]


def test_rbac_can_be_left_to_the_user() -> None:
    docs = render("rbac.create=false", "serviceAccount.create=false", "serviceAccount.name=ops")
    assert not [d for d in docs if d["kind"].endswith(("Role", "RoleBinding"))]
    assert not of_kind(docs, "ServiceAccount")
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "ops"


# --- metrics, dashboards, alerts -------------------------------------------------------------


def test_metrics_service_and_service_monitor() -> None:
    docs = render("metrics.serviceMonitor.enabled=true",
                  "metrics.serviceMonitor.labels.release=kps")
    service = one(docs, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    monitor = one(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    endpoint = monitor["spec"]["endpoints"][0]
    # The operator's series carry the model's namespace label; keep it.
    assert endpoint["port"] == "metrics" and endpoint["honorLabels"] is True
    assert not of_kind(render(), "ServiceMonitor")


def test_dashboard_configmap_for_grafana_sidecar() -> None:
    assert not of_kind(render(), "ConfigMap")
    cm = one(render("dashboards.enabled=true"), "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(cm["data"]["lmscale-models.json"])
    titles = {p["title"] for p in dashboard["panels"]}
    for wanted in ("Replicas: desired and ready", "Queue depth (waiting requests)",
                   "TTFT p95 against the SLO", "GPU utilisation", "Scale events"):
        assert wanted in titles


def test_prometheus_rules() -> None:
    assert not of_kind(render(), "PrometheusRule")
    rule = one(render("prometheusRule.enabled=true"), "PrometheusRule")
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert alerts == {"LmscaleTTFTErrorBudgetBurnFast", "LmscaleTTFTErrorBudgetBurnSlow",
                      "LmscaleTTFTP95AboveSLO", "LmscaleTGIShedsLoad",
                      "LmscaleMetricsUnavailable",
                      "LmscaleReplicasPinnedAtMax"}


def test_every_rendered_object_is_labelled_and_namespaced() -> None:
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding"}
    for doc in render("dashboards.enabled=true", "prometheusRule.enabled=true",
                      "metrics.serviceMonitor.enabled=true"):
        meta = doc["metadata"]
        assert meta["labels"]["app.kubernetes.io/instance"] == "lmscale", doc["kind"]
        assert ("namespace" in meta) != (doc["kind"] in cluster_scoped), doc["kind"]


def test_pod_monitor_is_the_one_lmscale_renders() -> None:
    """The chart's PodMonitor and lmscale.render.podmonitor (the local Prometheus's scrape
    job comes from the latter) stay one object."""
    from lmscale.render import podmonitor

    monitors = [m for m in render("podMonitor.enabled=true", "podMonitor.interval=15s")
                if m["kind"] == "PodMonitor"]
    assert len(monitors) == 1
    expected = podmonitor.podmonitor(NAMESPACE)
    assert monitors[0]["spec"] == expected["spec"]
    assert monitors[0]["metadata"]["name"] == expected["metadata"]["name"]
    assert not [m for m in render() if m["kind"] == "PodMonitor"]


def _routed_children() -> list[Manifest]:
    from lmscale import api
    from lmscale import render as lmscale_render
    from lmscale.api import semantic

    body = yaml.safe_load((CHART.parents[1] / "examples" / "llama-3.1-8b-inference-pool"
                           / "lmd.yaml").read_text())
    body["metadata"].update(namespace="team-a", uid="u")
    lmd = api.LanguageModelDeployment.model_validate(body)
    plan = semantic.resolve(lmd.spec).plan
    assert plan is not None
    return lmscale_render.render_children(lmd, plan).present()


@pytest.mark.parametrize("sets", [
    pytest.param(("routing.inferencePool=true",), id="cluster-wide"),
    pytest.param(("routing.inferencePool=true", "watchNamespaces={team-a}"), id="namespaced"),
])
def test_rbac_allows_every_routing_child_and_what_the_picker_role_grants(
        sets: tuple[str, ...]) -> None:
    """With routing.inferencePool the operator writes the route, pool and picker objects, and
    may only grant a Role whose rules it holds itself (RBAC refuses escalation without the
    escalate verb)."""
    rules = [r for where, r in rules_of(render(*sets)) if where in ("<cluster>", "team-a")]
    children = _routed_children()
    for manifest in children:
        group = manifest["apiVersion"].rpartition("/")[0]
        plural = manifest["kind"].lower() + "s"  # every kind here has a regular plural
        for verb in ("get", "create", "patch", "delete"):
            assert allows(rules, group, plural, verb), (manifest["kind"], verb)
    role = next(m for m in children if m["kind"] == "Role")
    for granted in role["rules"]:
        for group in granted["apiGroups"]:
            for resource in granted["resources"]:
                for verb in granted["verbs"]:
                    assert allows(rules, group, resource, verb), (group, resource, verb)


def test_without_inference_pool_routing_the_operator_may_not_write_roles() -> None:
    rules = [r for _, r in rules_of(render())]
    for group, resource in (("rbac.authorization.k8s.io", "roles"), ("", "configmaps"),
                            ("", "serviceaccounts")):
        assert not allows(rules, group, resource, "create"), resource


# --- activator -------------------------------------------------------------------------------

ACTIVATOR = ("activator.enabled=true", "activator.discover=false",
             "activator.models[0].name=llama",
             "activator.models[0].backend=http://llama.ml.svc",
             "activator.models[0].hosts={llama.ml.svc,llama}",
             "activator.models[1].name=qwen", "activator.models[1].backend=http://qwen.ml.svc:8000")


def test_activator_is_off_by_default() -> None:
    assert not [d for d in render() if "activator" in d["metadata"]["name"]]


def test_activator_runs_two_replicas_with_a_pdb_and_args_lmscale_gateway_accepts() -> None:
    from lmscale.cli import build_parser
    from lmscale.gateway import routes

    docs = [d for d in render(*ACTIVATOR) if d["metadata"]["name"] == "lmscale-activator"]
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"Deployment", "Service", "PodDisruptionBudget"}
    deployment = kinds["Deployment"]
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    container = pod["containers"][0]
    args = build_parser().parse_args(container["args"])
    assert args.command == "gateway"
    assert (args.hold_timeout, args.queue_size) == (300.0, 256)
    table = routes.table([routes.parse_model(m) for m in args.model])
    assert table["llama"].hosts == frozenset({"llama.ml.svc", "llama"})
    assert table["qwen"].backends == ("http://qwen.ml.svc:8000",)
    labels = deployment["spec"]["selector"]["matchLabels"]
    assert labels["app.kubernetes.io/component"] == "activator"
    assert kinds["Service"]["spec"]["selector"] == labels
    assert kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == labels
    # the operator's own objects do not select the activator's pods
    operator = next(d for d in render(*ACTIVATOR) if d["kind"] == "Deployment"
                    and d["metadata"]["name"] == "lmscale")
    assert operator["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == \
        "operator"


def test_activator_without_models_or_with_a_bad_backend_is_refused() -> None:
    assert "activator.models" in render_error("activator.enabled=true", "activator.discover=false")
    assert "backend" in render_error("activator.enabled=true", "activator.models[0].name=m",
                                     "activator.models[0].backend=m.ml.svc")


def test_a_discovering_activator_lists_its_backends_and_patches_resources_and_nothing_else(
        ) -> None:
    from lmscale.cli import build_parser

    docs = render("activator.enabled=true")
    mine = {d["kind"]: d for d in docs if d["metadata"]["name"] == "lmscale-activator"}
    assert set(mine) >= {"Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"}
    pod = mine["Deployment"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "lmscale-activator"
    assert pod["automountServiceAccountToken"] is True
    args = build_parser().parse_args(pod["containers"][0]["args"])
    assert args.discover and args.model == []
    assert mine["ClusterRole"]["rules"] == [
        {"apiGroups": [""], "resources": ["services", "pods"], "verbs": ["list"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list"]},
        {"apiGroups": ["lmscale.dev"], "resources": ["languagemodeldeployments"],
         "verbs": ["patch"]}]
    subject = mine["ClusterRoleBinding"]["subjects"][0]
    assert (subject["name"], subject["namespace"]) == ("lmscale-activator", NAMESPACE)


def test_activator_service_monitor_scrapes_its_metrics_port_behind_a_value() -> None:
    assert not of_kind(render("activator.enabled=true"), "ServiceMonitor")
    docs = render("activator.enabled=true", "activator.serviceMonitor.enabled=true",
                  "activator.serviceMonitor.labels.release=kps",
                  "activator.serviceMonitor.interval=5s")
    monitor = one(docs, "ServiceMonitor")  # the operator's stays off: metrics.serviceMonitor
    assert monitor["metadata"]["name"] == "lmscale-activator"
    assert monitor["metadata"]["namespace"] == NAMESPACE
    assert monitor["metadata"]["labels"]["release"] == "kps"
    service = next(d for d in docs if d["kind"] == "Service"
                   and d["metadata"]["name"] == "lmscale-activator")
    # it selects the activator's Service and no other, on the port named metrics
    assert monitor["spec"]["selector"]["matchLabels"] == service["metadata"]["labels"]
    operator_service = next(d for d in docs if d["kind"] == "Service"
                            and d["metadata"]["name"] == "lmscale-metrics")
    assert not (monitor["spec"]["selector"]["matchLabels"].items()
                <= operator_service["metadata"]["labels"].items())
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    endpoint = monitor["spec"]["endpoints"][0]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == ("metrics", "/metrics",
                                                                         "5s")
    # the port named metrics is where `lmscale gateway` serves /metrics
    port = next(p for p in service["spec"]["ports"] if p["name"] == "metrics")
    deployment = next(d for d in docs if d["kind"] == "Deployment"
                      and d["metadata"]["name"] == "lmscale-activator")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    served = next(p for p in container["ports"] if p["name"] == port["targetPort"])
    assert f"--admin-listen=0.0.0.0:{served['containerPort']}" in container["args"]
    # both monitors at once: two, each on its own Service
    both = render("activator.enabled=true", "activator.serviceMonitor.enabled=true",
                  "metrics.serviceMonitor.enabled=true")
    assert sorted(m["metadata"]["name"] for m in of_kind(both, "ServiceMonitor")) == [
        "lmscale", "lmscale-activator"]
    assert "activator.serviceMonitor.enabled needs activator.enabled" in render_error(
        "activator.serviceMonitor.enabled=true")
    assert "serviceMonitor" in render_error("activator.enabled=true",
                                            "activator.serviceMonitor.interval=often")


def test_the_operator_writes_endpoint_slices_only_with_the_activator() -> None:
    def operator_env(docs: list[Manifest]) -> dict[str, str]:
        operator = next(d for d in docs if d["kind"] == "Deployment"
                        and d["metadata"]["name"] == "lmscale")
        return {e["name"]: e.get("value", "")
                for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]}

    def operator_rules(docs: list[Manifest]) -> list[Manifest]:
        return [r for _, r in rules_of([d for d in docs if "activator" not in
                                        d["metadata"]["name"]])]

    plain, fronted = render(), render("activator.enabled=true")
    assert "LMSCALE_ACTIVATOR_SERVICE" not in operator_env(plain)
    assert operator_env(fronted)["LMSCALE_ACTIVATOR_SERVICE"] == f"{NAMESPACE}/lmscale-activator"
    for verb in ("get", "list", "watch", "delete"):
        assert allows(operator_rules(plain), "discovery.k8s.io", "endpointslices", verb)
    for verb in ("create", "patch"):
        assert not allows(operator_rules(plain), "discovery.k8s.io", "endpointslices", verb)
        assert allows(operator_rules(fronted), "discovery.k8s.io", "endpointslices", verb)
