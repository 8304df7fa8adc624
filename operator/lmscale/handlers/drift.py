"""A child deleted or edited by hand: put it back as the spec says (server-side apply)."""

from __future__ import annotations

from typing import Any

import kopf

from lmscale.api.resource import API_VERSION, KIND
from lmscale.controller.desired import Desired, desired_state
from lmscale.handlers.names import MANAGED
from lmscale.k8s import reconcile, resources
from lmscale.k8s.client import ApiException, namespace_gone

CHILD_KINDS = (
    ("apps", "v1", "deployments"),
    ("", "v1", "services"),
    ("networking.k8s.io", "v1", "ingresses"),
    ("policy", "v1", "poddisruptionbudgets"),
)


def _owner_name(body: kopf.Body) -> str | None:
    for ref in body.metadata.get("ownerReferences") or []:
        if ref.get("apiVersion") == API_VERSION and ref.get("kind") == KIND:
            return str(ref["name"])
    return None


def _changed_by_someone_else(event_type: str, body: kopf.Body, memo: kopf.Memo) -> bool:
    """Deployments change status constantly; only a new generation can be drift."""
    if body.get("kind") != "Deployment":
        return True
    seen = memo.setdefault("deployment_generations", {})
    key = (body.metadata.namespace, body.metadata.name)
    if event_type == "DELETED":
        seen.pop(key, None)
        return True
    generation = body.metadata.get("generation")
    changed = seen.get(key) != generation
    seen[key] = generation
    return changed


def child_event(event: dict[str, Any], body: kopf.Body, memo: kopf.Memo,
                logger: kopf.Logger, **_: Any) -> None:
    owner = _owner_name(body)
    if owner is None or event["type"] not in ("MODIFIED", "DELETED"):
        return
    if not _changed_by_someone_else(event["type"], body, memo):
        return
    parent = memo.kube.get(resources.LMDS, namespace=body.metadata.namespace, name=owner)
    if parent is None or parent["metadata"].get("deletionTimestamp"):
        return  # the owner is going: garbage collection removes the children
    outcome = desired_state(parent)
    if not isinstance(outcome, Desired):
        return
    try:
        changes = reconcile.apply_children(memo.kube, outcome)
    except ApiException as error:
        if namespace_gone(error):
            return
        raise
    for change in changes:
        logger.info("drift corrected: %s", change)
        kopf.event(parent, type="Normal", reason="DriftCorrected",
                   message=f"{change} back to the spec after an outside change")


for _group, _version, _plural in CHILD_KINDS:
    kopf.on.event(_group, _version, _plural, labels=MANAGED)(child_event)  # type: ignore[arg-type]
