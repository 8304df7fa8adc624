"""Apply a LanguageModelDeployment's desired children and report on them (the I/O half)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from lmscale import render
from lmscale.api.plan_status import capacity_plan_status
from lmscale.api.resource import API_VERSION, KIND
from lmscale.api.status import Condition, ConditionReason, ConditionType
from lmscale.controller import address, conditions
from lmscale.controller.desired import Desired, Invalid, initial_replicas
from lmscale.k8s import resources
from lmscale.k8s.client import SCALER_MANAGER, TEMPLATE_MANAGER, Kube


@dataclasses.dataclass(frozen=True)
class Change:
    """One child the reconciler created, changed or deleted, for an Event."""

    verb: str  # created | updated | deleted
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.verb} {self.kind} {self.name}"


def apply_children(kube: Kube, desired: Desired, *, had_variants: bool = False,
                   new: bool = False) -> list[Change]:
    """Apply every child that should exist and delete the optional ones that should not.

    `had_variants`: the resource's status shows fallback plans, so Deployments of types the
    spec no longer lists may exist (looked for only then, or while the spec lists any).
    `new`: the resource was just created (the first try of its create handler), so it owns
    no child yet: nothing is read before it is written and no optional child is looked
    for, a third of the requests of a fleet applied at once.
    """
    changes: list[Change] = []
    meta = desired.lmd.metadata
    for manifest in desired.manifests:
        resource = resources.of(manifest)
        name = manifest["metadata"]["name"]
        before = None if new else kube.get(resource, namespace=meta["namespace"], name=name)
        after = kube.apply(manifest, field_manager=TEMPLATE_MANAGER)
        if before is None:
            changes.append(Change("created", manifest["kind"], name))
            if manifest["kind"] == "Deployment":
                # A fallback type starts empty: the scaler moves capacity there when the
                # primary type cannot be scheduled.
                first = 0 if _is_variant(manifest) else initial_replicas(desired.lmd)
                replicas = render.render_replicas(name, meta["namespace"], first)
                kube.apply(replicas, field_manager=SCALER_MANAGER)
        elif _version(before) != _version(after):
            changes.append(Change("updated", manifest["kind"], name))
    if new:
        return changes
    if had_variants or desired.children.variants:
        changes += _delete_unlisted_variants(kube, desired)
    for api_version, kind, name in desired.children.absent(meta["name"]):
        resource = resources.BY_KIND[(api_version, kind)]
        existing = kube.get(resource, namespace=meta["namespace"], name=name)
        if existing is not None and _owned_by(existing, meta.get("uid")):
            kube.delete(resource, namespace=meta["namespace"], name=name)
            changes.append(Change("deleted", kind, name))
    return changes


def had_variants(body: Mapping[str, Any]) -> bool:
    """Whether the last plan written to status had fallback types."""
    return bool(((body.get("status") or {}).get("capacityPlan") or {}).get("fallbacks"))


def _is_variant(manifest: Mapping[str, Any]) -> bool:
    return render.VARIANT_LABEL in (manifest.get("metadata", {}).get("labels") or {})


def _delete_unlisted_variants(kube: Kube, desired: Desired) -> list[Change]:
    """Deployments of fallback types the spec no longer lists (a list call: their names
    come from types that are gone from the spec)."""
    meta = desired.lmd.metadata
    wanted = {m["metadata"]["name"] for m in desired.children.variants}
    selector = f"{render.DEPLOYMENT_LABEL}={meta['name']},{render.VARIANT_LABEL}"
    changes = []
    for existing in kube.list(resources.DEPLOYMENTS, namespace=meta["namespace"],
                              label_selector=selector):
        name = existing["metadata"]["name"]
        if name not in wanted and _owned_by(existing, meta.get("uid")):
            kube.delete(resources.DEPLOYMENTS, namespace=meta["namespace"], name=name)
            changes.append(Change("deleted", "Deployment", name))
    return changes


def _version(body: Mapping[str, Any]) -> Any:
    """What changes when the object's desired state does: the generation where the kind
    keeps one (a Deployment's status updates would make resourceVersion a false alarm)."""
    meta = body["metadata"]
    return meta.get("generation") or meta.get("resourceVersion")


def _owned_by(body: Mapping[str, Any], uid: str | None) -> bool:
    return any(ref.get("uid") == uid for ref in body["metadata"].get("ownerReferences") or [])


def _status_body(body: Mapping[str, Any], status: Mapping[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    return {
        "apiVersion": API_VERSION, "kind": KIND,
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "status": dict(status),
    }


def conditions_json(old: Sequence[Mapping[str, Any]], new: Sequence[Condition]
                    ) -> list[dict[str, Any]]:
    """`new` as status holds it, each keeping its lastTransitionTime from `old` (status as
    read or last written) when its status did not change; in the order of `old`, new types
    last, so a status apply changes as little as possible. `old` stays JSON: parsing it
    into models every cycle cost an idle fleet more than its decisions."""
    before: dict[Any, Mapping[str, Any]] = {}
    for written in old:
        before.setdefault(written.get("type"), written)
    fresh: dict[Any, dict[str, Any]] = {}
    for c in new:
        body = c.model_dump(mode="json", by_alias=True, exclude_none=True)
        prior = before.get(body["type"])
        if (prior is not None and prior.get("status") == body["status"]
                and prior.get("lastTransitionTime")):
            body["lastTransitionTime"] = prior["lastTransitionTime"]
        fresh[body["type"]] = body
    kept = [fresh.pop(t) for t in before if t in fresh]
    return kept + list(fresh.values())


def write_spec_status(kube: Kube, body: Mapping[str, Any], outcome: Desired | Invalid, *,
                      now: datetime, autoscaling: Mapping[str, Any] | None = None,
                      handled: str | None = None) -> None:
    """The reconciler's part of status: generation, plan, selector and InvalidSpec; and
    `handled`, kopf's diff-base of this spec, in the same write (handlers.diffbase)."""
    generation = int(body["metadata"].get("generation", 0))
    if isinstance(outcome, Invalid):
        invalid = conditions.condition(ConditionType.INVALID_SPEC, True, outcome.reason,
                                       outcome.message, now=now, generation=generation)
        status: dict[str, Any] = {"observedGeneration": generation}
    else:
        invalid = conditions.condition(ConditionType.INVALID_SPEC, False,
                                       ConditionReason.SPEC_VALID, "spec is valid",
                                       now=now, generation=generation)
        status = {
            "observedGeneration": generation,
            "selector": render.selector(body["metadata"]["name"]),
            "url": address.url(outcome.lmd),
            "capacityPlan": capacity_plan_status(
                outcome.plan.to_dict(), autoscaling,
                fallbacks=[p.to_dict() for p in outcome.fallback_plans]),
        }
    status["conditions"] = conditions_json((body.get("status") or {}).get("conditions") or [],
                                           [invalid])
    if handled is not None:
        status["kopf"] = {"lastHandledConfiguration": handled}
    kube.apply(_status_body(body, status), field_manager=TEMPLATE_MANAGER,
               subresource="status")


def write_workload_status(kube: Kube, body: Mapping[str, Any], status: Mapping[str, Any]
                          ) -> None:
    """The scaler's part of status: replicas, workload conditions, metrics, decisions."""
    kube.apply(_status_body(body, status), field_manager=SCALER_MANAGER, subresource="status")
