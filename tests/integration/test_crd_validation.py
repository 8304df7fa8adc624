"""The apiserver, through the generated CRD, rejects malformed resources at the right field.

The cases are shared with tests/unit/api (tests/unit/api/malformed.py), where pydantic must
reject each at the same field: the CEL rules and their Python twins cannot drift apart
without one of the two suites failing. Also checks what the schema adds besides rejection:
defaults the apiserver stores, the scale subresource, and `kubectl explain` descriptions.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from lmscale.k8s import resources
from lmscale.k8s.client import ApiException, Kube
from tests.unit.api.malformed import MALFORMED, patched, valid_body

pytestmark = pytest.mark.cluster


def _create(kube: Kube, namespace: str, body: dict[str, Any]) -> Any:
    return kube.create({**body, "metadata": {**body["metadata"], "namespace": namespace}})


def _causes(error: ApiException) -> tuple[str, list[str]]:
    """The message and the causes' field paths of an Invalid (422) response."""
    status = json.loads(error.body)
    fields = [c.get("field", "") for c in status.get("details", {}).get("causes", [])]
    return status.get("message", ""), fields


@pytest.mark.parametrize(("spec_patch", "field"), MALFORMED)
def test_apiserver_rejects_malformed_resource(
    kube_api: Kube, namespace: str, spec_patch: dict[str, Any], field: str
) -> None:
    body = patched(valid_body("bad"), {"spec": spec_patch})
    with pytest.raises(ApiException) as raised:
        _create(kube_api, namespace, body)
    assert raised.value.status == 422, raised.value.body
    message, fields = _causes(raised.value)
    assert field in fields or f"{field}:" in message, (field, fields, message)


def test_apiserver_accepts_the_minimal_resource_and_fills_defaults(
    kube_api: Kube, namespace: str
) -> None:
    created = _create(kube_api, namespace, valid_body("ok"))
    spec = created["spec"]
    assert spec["accelerator"]["gpusPerReplica"] == "auto"
    assert spec["engine"]["kind"] == "vllm"
    assert spec["model"]["dtype"] == "bfloat16"
    assert spec["replicas"] == 1
    scaling = spec["scaling"]
    assert (scaling["enabled"], scaling["minReplicas"], scaling["maxReplicas"]) == (True, 1, 4)
    assert scaling["onMissingMetrics"] == {"action": "hold"}
    assert scaling["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert scaling["behavior"]["scaleUp"]["policies"] == [
        {"type": "Percent", "value": 100, "periodSeconds": 15},
        {"type": "Pods", "value": 4, "periodSeconds": 15},
    ]


def test_explicit_gpus_per_replica_is_accepted_as_a_number(
    kube_api: Kube, namespace: str
) -> None:
    body = patched(valid_body("tp4"), {"spec": {"accelerator": {"gpusPerReplica": 4}}})
    created = _create(kube_api, namespace, body)
    assert created["spec"]["accelerator"]["gpusPerReplica"] == 4


def test_scale_subresource_drives_spec_replicas(kube_api: Kube, namespace: str) -> None:
    """`kubectl scale`, an HPA or KEDA can drive a model that opts out of lmscale's scaling."""
    body = patched(valid_body("manual"), {"spec": {"scaling": {"enabled": False}}})
    _create(kube_api, namespace, body)
    kube_api.merge_patch(resources.LMDS, namespace=namespace, name="manual",
                         patch={"spec": {"replicas": 3}}, subresource="scale")
    stored = kube_api.get(resources.LMDS, namespace=namespace, name="manual")
    assert stored is not None and stored["spec"]["replicas"] == 3


def test_status_is_a_subresource(kube_api: Kube, namespace: str) -> None:
    """A status write cannot change spec. (The patch's own response is checked, since a
    running operator may rewrite status right after.)"""
    _create(kube_api, namespace, valid_body("status"))
    written = kube_api.merge_patch(
        resources.LMDS, namespace=namespace, name="status", subresource="status",
        patch={"status": {"lastScaleReason": "written by the test"}, "spec": {"replicas": 7}})
    assert written["status"]["lastScaleReason"] == "written by the test"
    assert written["spec"]["replicas"] == 1


def test_explain_describes_scaling(cluster: Any, lmscale_crds: None) -> None:
    """`kubectl explain lmd.spec.scaling` is useful: every field there says what it does."""
    result = cluster.kubectl("explain", "lmd.spec.scaling")
    assert "Horizontal autoscaling" in result.stdout
    for field in ("minReplicas", "maxReplicas", "behavior", "onMissingMetrics", "scaleToZero"):
        assert field in result.stdout
