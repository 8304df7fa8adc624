"""Every HTTPRoute, InferencePool and endpoint-picker object lmscale renders passes a
server-side apply against the Gateway API and Inference Extension CRDs (installed by the local
cluster from their pinned Go modules), and the examples of both modes apply cleanly."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from lmscale import api, render
from lmscale.api import semantic

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = {
    "gateway": REPO / "examples" / "llama-3.1-8b-gateway" / "lmd.yaml",
    "inferencePool": REPO / "examples" / "llama-3.1-8b-inference-pool" / "lmd.yaml",
}
ROUTED_KINDS = {"HTTPRoute", "InferencePool", "ConfigMap", "ServiceAccount", "Role",
                "RoleBinding"}


def _body(mode: str) -> dict[str, Any]:
    return yaml.safe_load(EXAMPLES[mode].read_text())


def _variant(mode: str, **routing: Any) -> dict[str, Any]:
    body = copy.deepcopy(_body(mode))
    body["spec"]["routing"].update(routing)
    return body


def _sglang(mode: str) -> dict[str, Any]:
    body = _body(mode)
    body["spec"]["engine"] = {"kind": "sglang", "port": 30000}
    return body


def _tgi(mode: str) -> dict[str, Any]:
    body = _body(mode)
    body["spec"]["engine"] = {"kind": "tgi", "port": 3000}
    return body


CASES = [
    pytest.param(_body("gateway"), id="gateway-example"),
    pytest.param(_variant("gateway", hostnames=[], paths=["/"], parentRefs=[
        {"name": "a"}, {"name": "b", "namespace": "gw", "sectionName": "https"}]),
        id="gateway-two-parents-any-host"),
    pytest.param(_variant("gateway", requestTimeoutSeconds=86400), id="gateway-longest-timeout"),
    pytest.param(_body("inferencePool"), id="pool-example"),
    pytest.param(_variant("inferencePool", endpointPicker={"replicas": 3,
                                                          "image": "example.com/epp:v1"}),
                 id="pool-ha-picker-own-image"),
    pytest.param(_sglang("inferencePool"), id="pool-sglang"),
    pytest.param(_tgi("inferencePool"), id="pool-tgi"),
]  # fmt: skip


def _children(body: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    body = copy.deepcopy(body)
    body["metadata"].update(namespace=namespace, uid="00000000-0000-0000-0000-000000000001")
    lmd = api.LanguageModelDeployment.model_validate(body)
    resolution = semantic.resolve(lmd.spec)
    assert resolution.plan is not None, resolution.message
    return render.render_children(lmd, resolution.plan).present()


def _dry_run(cluster: Any, manifests: list[dict[str, Any]]) -> Any:
    return cluster.kubectl("apply", "--server-side", "--dry-run=server",
                           "--field-manager=lmscale", "-f", "-",
                           stdin=yaml.safe_dump_all(manifests), check=False)


@pytest.mark.parametrize("body", CASES)
def test_every_rendered_child_passes_server_side_apply(cluster: Any, namespace: str,
                                                       body: dict[str, Any]) -> None:
    manifests = _children(body, namespace)
    kinds = {m["kind"] for m in manifests}
    assert "HTTPRoute" in kinds
    if body["spec"]["routing"]["mode"] == "inferencePool":
        assert kinds >= ROUTED_KINDS
    result = _dry_run(cluster, manifests)
    assert result.returncode == 0, result.stderr
    for m in manifests:
        assert f"{m['kind'].lower()}" in result.stdout.lower()


def test_the_schema_check_is_real(cluster: Any, namespace: str) -> None:
    """A route the Gateway API's CEL rules refuse (a backend timeout above the request's)."""
    manifests = _children(_body("gateway"), namespace)
    route = next(m for m in manifests if m["kind"] == "HTTPRoute")
    route["spec"]["rules"][0]["timeouts"] = {"request": "10s", "backendRequest": "20s"}
    result = _dry_run(cluster, [route])
    assert result.returncode != 0
    assert "backendRequest" in result.stderr


@pytest.mark.parametrize("mode", sorted(EXAMPLES))
def test_the_examples_apply_cleanly(cluster: Any, lmscale_crds: None, namespace: str,
                                    mode: str) -> None:
    result = cluster.kubectl("apply", "--server-side", "--dry-run=server", "-n", namespace,
                             "-f", str(EXAMPLES[mode]), check=False)
    assert result.returncode == 0, result.stderr


def test_the_operator_writes_the_pool_and_deletes_it_when_the_mode_changes(
        cluster: Any, operator: Any, namespace: str) -> None:
    from tests.support import apply, get, wait_for

    body = copy.deepcopy(_body("inferencePool"))
    name = body["metadata"]["name"]
    apply(cluster, namespace, body)
    picked = [("httproute", name), ("inferencepool", name), ("deployment", f"{name}-epp"),
              ("service", f"{name}-epp"), ("configmap", f"{name}-epp"),
              ("serviceaccount", f"{name}-epp"), ("role", f"{name}-epp"),
              ("rolebinding", f"{name}-epp")]
    for kind, child in picked:
        wait_for(lambda k=kind, c=child: get(cluster, namespace, k, c), timeout=60,
                 message=f"{kind} {child} created")
    pool = get(cluster, namespace, "inferencepool", name)
    assert pool["spec"]["selector"]["matchLabels"] == {"lmscale.dev/deployment": name}
    body["spec"]["routing"] = {"mode": "ingress"}
    body["spec"]["ingress"] = {"enabled": True, "host": "chat.example.com"}
    apply(cluster, namespace, body)
    wait_for(lambda: get(cluster, namespace, "ingress", name), timeout=60,
             message="Ingress created")
    for kind, child in picked:
        wait_for(lambda k=kind, c=child: get(cluster, namespace, k, c) is None, timeout=60,
                 message=f"{kind} {child} deleted")
    assert get(cluster, namespace, "deployment", name) is not None  # the model stays
