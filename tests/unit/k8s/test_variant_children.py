"""The reconciler with fallback types: a new fallback Deployment starts at 0 replicas, and
the Deployment of a type the spec no longer lists is deleted."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from tests.unit.api.malformed import patched, valid_body

from lmscale.controller.desired import Desired, desired_state
from lmscale.k8s import reconcile
from lmscale.k8s.client import SCALER_MANAGER

UID = "5b0e4f5e-0000-4a53-9d3e-6f1c2b7a9e10"


class FakeKube:
    def __init__(self, existing: list[dict[str, Any]]) -> None:
        self.existing = existing
        self.applied: list[tuple[str, dict[str, Any]]] = []
        self.deleted: list[str] = []
        self.listed: list[str | None] = []
        self.read: list[str] = []

    def get(self, resource: Any, *, namespace: str | None, name: str) -> dict[str, Any] | None:
        self.read.append(name)
        return None

    def apply(self, manifest: Mapping[str, Any], *, field_manager: str,
              subresource: str | None = None) -> dict[str, Any]:
        self.applied.append((field_manager, copy.deepcopy(dict(manifest))))
        return dict(manifest)

    def list(self, resource: Any, *, namespace: str | None = None,
             label_selector: str | None = None) -> list[dict[str, Any]]:
        self.listed.append(label_selector)
        return self.existing

    def delete(self, resource: Any, *, namespace: str | None, name: str) -> None:
        self.deleted.append(name)


def _desired(spec_patch: dict[str, Any]) -> Desired:
    body = patched(valid_body(), {"spec": spec_patch})
    body["metadata"].update({"namespace": "team-a", "uid": UID, "generation": 1})
    outcome = desired_state(body)
    assert isinstance(outcome, Desired), outcome
    return outcome


def _owned(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "ownerReferences": [
        {"apiVersion": "lmscale.dev/v1alpha1", "kind": "LanguageModelDeployment",
         "name": "chat", "uid": UID}]}}


def test_a_new_fallback_deployment_starts_empty() -> None:
    kube = FakeKube([])
    reconcile.apply_children(kube, _desired(  # type: ignore[arg-type]
        {"accelerator": {"fallbacks": [{"type": "nvidia-a100-80gb"}]}}))
    first = {m["metadata"]["name"]: m["spec"]["replicas"]
             for manager, m in kube.applied if manager == SCALER_MANAGER}
    assert first == {"chat": 1, "chat-nvidia-a100-80gb": 0}


def test_the_deployment_of_an_unlisted_type_is_deleted() -> None:
    kube = FakeKube([_owned("chat-nvidia-a100-80gb"), _owned("chat-nvidia-l40s")])
    changes = reconcile.apply_children(kube, _desired(  # type: ignore[arg-type]
        {"accelerator": {"fallbacks": [{"type": "nvidia-a100-80gb"}]}}))
    assert kube.deleted == ["chat-nvidia-l40s"]
    assert "deleted Deployment chat-nvidia-l40s" in [str(c) for c in changes]
    assert kube.listed == ["lmscale.dev/deployment=chat,lmscale.dev/variant"]


def test_without_fallbacks_no_list_call_unless_status_had_some() -> None:
    kube = FakeKube([_owned("chat-nvidia-l40s")])
    reconcile.apply_children(kube, _desired({}))  # type: ignore[arg-type]
    assert kube.listed == [] and kube.deleted == []
    reconcile.apply_children(kube, _desired({}), had_variants=True)  # type: ignore[arg-type]
    assert kube.deleted == ["chat-nvidia-l40s"]


def test_a_deployment_of_another_owner_is_left_alone() -> None:
    stranger = _owned("chat-nvidia-l40s")
    stranger["metadata"]["ownerReferences"][0]["uid"] = "someone-else"
    kube = FakeKube([stranger])
    reconcile.apply_children(kube, _desired(  # type: ignore[arg-type]
        {"accelerator": {"fallbacks": [{"type": "nvidia-a100-80gb"}]}}))
    assert kube.deleted == []


def test_a_new_resource_writes_its_children_without_reading_first() -> None:
    """Its first create: no child can be its own yet, so no GET and nothing to delete."""
    kube = FakeKube([_owned("chat-nvidia-l40s")])
    desired = _desired({"accelerator": {"fallbacks": [{"type": "nvidia-a100-80gb"}]}})
    changes = reconcile.apply_children(kube, desired, new=True)  # type: ignore[arg-type]
    assert kube.read == [] and kube.listed == [] and kube.deleted == []
    assert [str(c) for c in changes] == [
        f"created {m['kind']} {m['metadata']['name']}" for m in desired.manifests]
    assert {m["metadata"]["name"]: m["spec"]["replicas"]
            for manager, m in kube.applied if manager == SCALER_MANAGER} == {
        "chat": 1, "chat-nvidia-a100-80gb": 0}
    reconcile.apply_children(kube, desired)  # type: ignore[arg-type]
    assert kube.read and kube.deleted == ["chat-nvidia-l40s"]  # any later one looks
