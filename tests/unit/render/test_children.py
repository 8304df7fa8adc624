"""Service, Ingress, PodDisruptionBudget, the cache claim, labels and owner references."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.render.builders import lmd, planned

from lmscale import render
from lmscale.render import ingress

HOST = {"enabled": True, "host": "chat.example.com"}


def test_service_targets_the_engine_port() -> None:
    service = render.render_service(
        lmd({"service": {"type": "LoadBalancer", "port": 8080,
                         "annotations": {"cloud.example.com/internal": "true"}}})
    )  # fmt: skip
    assert service["spec"] == {
        "type": "LoadBalancer",
        "selector": {"lmscale.dev/deployment": "chat"},
        "ports": [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}],
    }
    assert service["metadata"]["annotations"] == {"cloud.example.com/internal": "true"}


INGRESS_ANNOTATIONS = [
    pytest.param({"className": "nginx"}, "nginx.ingress.kubernetes.io/load-balance", "ewma",
                 id="nginx-default-ewma"),
    pytest.param({"className": "nginx", "loadBalancing": "round_robin"},
                 "nginx.ingress.kubernetes.io/load-balance", "round_robin", id="nginx-round-robin"),
    pytest.param({"className": "haproxy"}, "haproxy.org/load-balance", "leastconn",
                 id="haproxy-default-least"),
    pytest.param({"className": "haproxy", "loadBalancing": "round_robin"},
                 "haproxy-ingress.github.io/balance-algorithm", "roundrobin",
                 id="haproxy-round-robin"),
    pytest.param({"className": "nginx", "annotations": {
                     "nginx.ingress.kubernetes.io/load-balance": "round_robin"}},
                 "nginx.ingress.kubernetes.io/load-balance", "round_robin",
                 id="user-annotation-wins"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "key", "value"), INGRESS_ANNOTATIONS)
def test_ingress_load_balancing(spec: dict[str, Any], key: str, value: str) -> None:
    manifest = render.render_ingress(lmd({"ingress": {**HOST, **spec}}))
    assert manifest is not None
    assert manifest["metadata"]["annotations"][key] == value


def test_nginx_lets_streams_run_long() -> None:
    annotations = ingress.controller_annotations("nginx", None)
    assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"


def test_other_ingress_classes_get_no_controller_annotations() -> None:
    manifest = render.render_ingress(lmd({"ingress": {**HOST, "className": "traefik"}}))
    assert manifest is not None
    assert "annotations" not in manifest["metadata"]
    assert manifest["spec"]["ingressClassName"] == "traefik"


def test_ingress_routes_paths_to_the_service_with_tls() -> None:
    manifest = render.render_ingress(
        lmd({"ingress": {**HOST, "paths": ["/v1", "/health"], "tlsSecretName": "chat-tls"}})
    )
    assert manifest is not None
    (rule,) = manifest["spec"]["rules"]
    assert rule["host"] == "chat.example.com"
    assert [(p["path"], p["pathType"]) for p in rule["http"]["paths"]] == [
        ("/v1", "Prefix"),
        ("/health", "Prefix"),
    ]
    backend = rule["http"]["paths"][0]["backend"]
    assert backend == {"service": {"name": "chat", "port": {"name": "http"}}}
    assert manifest["spec"]["tls"] == [{"hosts": ["chat.example.com"], "secretName": "chat-tls"}]
    assert "ingressClassName" not in manifest["spec"], "the cluster's default class"


def test_no_ingress_when_disabled() -> None:
    assert render.render_ingress(lmd()) is None


PDB = [
    pytest.param({"scaling": {"maxReplicas": 4}}, True, id="scaling-to-four"),
    pytest.param({"scaling": {"maxReplicas": 1}}, False, id="scaling-capped-at-one"),
    pytest.param({"scaling": {"enabled": False, "maxReplicas": 4}, "replicas": 1}, False,
                 id="manual-single"),
    pytest.param({"scaling": {"enabled": False, "maxReplicas": 1}, "replicas": 3}, True,
                 id="manual-three"),
]  # fmt: skip


@pytest.mark.parametrize(("spec_patch", "expected"), PDB)
def test_pdb_when_more_than_one_replica(spec_patch: dict[str, Any], expected: bool) -> None:
    manifest = render.render_pdb(lmd(spec_patch))
    assert (manifest is not None) is expected
    if manifest is not None:
        assert manifest["spec"]["maxUnavailable"] == 1
        assert manifest["spec"]["selector"] == {"matchLabels": {"lmscale.dev/deployment": "chat"}}


CLAIMS = [
    pytest.param(None, None, id="no-cache"),
    pytest.param({"claimName": "weights"}, None, id="existing-claim"),
    pytest.param({"size": "200Gi", "storageClassName": "fast", "accessMode": "ReadWriteOnce"},
                 {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "200Gi"}},
                  "storageClassName": "fast"}, id="created-claim"),
]  # fmt: skip


@pytest.mark.parametrize(("cache", "expected"), CLAIMS)
def test_model_cache_claim(cache: dict[str, Any] | None, expected: dict[str, Any] | None) -> None:
    manifest = render.render_model_cache_claim(lmd({"modelCache": cache} if cache else {}))
    assert (manifest and manifest["spec"]) == expected
    if manifest:
        assert manifest["metadata"]["name"] == "chat-model-cache"


def test_children_all_share_labels_and_namespace() -> None:
    resource, plan = planned({"ingress": HOST, "modelCache": {"size": "50Gi"}})
    children = render.render_children(resource, plan)
    kinds = [m["kind"] for m in children.present()]
    assert kinds == ["PersistentVolumeClaim", "Deployment", "Service", "Ingress",
                     "PodDisruptionBudget"]  # fmt: skip
    assert [kind for _, kind, _ in children.absent("chat")] == [
        "HTTPRoute", "InferencePool", "ConfigMap", "ServiceAccount", "Role", "RoleBinding",
        "Deployment", "Service", "EndpointSlice", "Service"]
    # routing.mode ingress: none of the Gateway API children; not behind the activator
    assert {name for _, kind, name in children.absent("chat")} == {"chat", "chat-epp",
                                                                 "chat-pods"}
    for manifest in children.present():
        assert manifest["metadata"]["namespace"] == "team-a"
        assert manifest["metadata"]["labels"] == {
            "app.kubernetes.io/name": "vllm",
            "app.kubernetes.io/instance": "chat",
            "app.kubernetes.io/component": "model-server",
            "app.kubernetes.io/managed-by": "lmscale",
            "lmscale.dev/deployment": "chat",
        }
    assert "ownerReferences" not in children.deployment["metadata"], "the caller adds them"


def test_optional_children_to_delete() -> None:
    resource, plan = planned({"scaling": {"maxReplicas": 1}})
    assert render.render_children(resource, plan).absent("chat")[:2] == [
        ("networking.k8s.io/v1", "Ingress", "chat"),
        ("policy/v1", "PodDisruptionBudget", "chat"),
    ]


def test_gitops_tracking_marks_are_never_copied() -> None:
    """Argo CD's tracking label/annotation on the parent must not reach any child."""
    resource, plan = planned(
        {"ingress": HOST},
        labels={"app.kubernetes.io/instance": "argo-app", "team": "a"},
        annotations={"argocd.argoproj.io/tracking-id": "argo-app:lmscale.dev/x:ns/chat"},
    )
    for manifest in render.render_children(resource, plan).present():
        text = repr(manifest)
        assert "argo-app" not in text and "argocd.argoproj.io" not in text
        assert "team" not in manifest["metadata"]["labels"]


def test_owner_reference() -> None:
    body = {
        "apiVersion": "lmscale.dev/v1alpha1",
        "kind": "LanguageModelDeployment",
        "metadata": {"name": "chat", "namespace": "team-a", "uid": "abc-123"},
        "spec": {},
    }
    assert render.owner_reference(body) == {
        "apiVersion": "lmscale.dev/v1alpha1",
        "kind": "LanguageModelDeployment",
        "name": "chat",
        "uid": "abc-123",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_selector_string_for_the_scale_subresource() -> None:
    assert render.selector("chat") == "lmscale.dev/deployment=chat"
