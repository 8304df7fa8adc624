"""In-memory indexes of what the scaling loop reads every cycle (no list calls).

Each index keeps a small record, not the object: pods as a frozen `PodInfo`; Deployments
as the few fields the conditions read (replicas, generation, status); resources as their
spec and the scaler's part of status, without managedFields, annotations (kubectl's
last-applied copy of the spec among them) or kopf's own bookkeeping. A fleet of 1,000
resources then holds kilobytes per resource, not the bodies the watches deliver.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import kopf

from lmscale.controller.pods import PodInfo, summarize
from lmscale.handlers.names import DEPLOYMENT_LABEL, LMD, VARIANT_LABEL
from lmscale.render.activation import WAKE_ANNOTATION

Key = tuple[str, str]
_LMD_META = ("name", "namespace", "uid", "generation", "deletionTimestamp", "creationTimestamp")
_LMD_STATUS_SKIPPED = ("kopf", "capacityPlan")
# Of the plan, what a `gpusPerReplica: auto` choice needs to be kept (`desired.decided_degrees`)
_DEGREE_FIELDS = ("gpu", "gpusPerReplica", "gpusPerReplicaInputs", "gpusPerReplicaReason",
                  "gpusPerReplicaCandidates")


def _owner_key(body: kopf.Body) -> Key:
    return str(body.metadata.namespace), body.metadata.labels[DEPLOYMENT_LABEL]


def deployment_record(body: Mapping[str, Any]) -> dict[str, Any]:
    """What `controller.conditions` and the scaler read of a Deployment (a fallback GPU
    type's Deployment also keeps its variant label)."""
    meta, spec = body.get("metadata") or {}, body.get("spec") or {}
    record_meta = {k: meta[k] for k in ("name", "namespace", "generation") if k in meta}
    variant = (meta.get("labels") or {}).get(VARIANT_LABEL)
    if variant is not None:
        record_meta["labels"] = {VARIANT_LABEL: variant}
    return {"metadata": record_meta,
            "spec": {"replicas": spec.get("replicas")},
            "status": dict(body.get("status") or {})}


def variant_of(record: Mapping[str, Any]) -> str | None:
    """The fallback GPU type of a Deployment record; None for the primary."""
    return ((record.get("metadata") or {}).get("labels") or {}).get(VARIANT_LABEL)


def split_deployments(records: Sequence[Mapping[str, Any]]
                      ) -> tuple[Mapping[str, Any] | None, dict[str, Mapping[str, Any]]]:
    """One resource's Deployment records: the primary's (the last, as kopf keeps them) and
    the fallback types' by type."""
    primaries = [r for r in records if variant_of(r) is None]
    fallbacks = {str(variant_of(r)): r for r in records if variant_of(r) is not None}
    return (primaries[-1] if primaries else None), fallbacks


def lmd_record(body: Mapping[str, Any]) -> dict[str, Any]:
    """A resource as the scaler reads it: identity, spec, and status without the plan,
    except the persisted calibration (capacityPlan.autoscaling) and `gpusPerReplica: auto`
    choices (without them a restarted scaler would choose, and calibrate, again)."""
    meta = body.get("metadata") or {}
    status = dict(body.get("status") or {})
    plan = status.get("capacityPlan") or {}
    record_status = {k: v for k, v in status.items() if k not in _LMD_STATUS_SKIPPED}
    kept_plan = _degree(plan)
    if plan.get("fallbacks"):
        kept_plan["fallbacks"] = [_degree(f) for f in plan["fallbacks"]]
    if plan.get("autoscaling"):
        kept_plan["autoscaling"] = plan["autoscaling"]
    if kept_plan:
        record_status["capacityPlan"] = kept_plan
    kept = {k: meta[k] for k in _LMD_META if k in meta}
    wake = (meta.get("annotations") or {}).get(WAKE_ANNOTATION)
    if wake:
        kept["annotations"] = {WAKE_ANNOTATION: wake}  # the activator's wake request
    return {"apiVersion": body.get("apiVersion"), "kind": body.get("kind"),
            "metadata": kept,
            "spec": dict(body.get("spec") or {}), "status": record_status}


def _degree(plan: Mapping[str, Any]) -> dict[str, Any]:
    if not plan.get("gpusPerReplicaInputs"):
        return {}
    return {k: plan[k] for k in _DEGREE_FIELDS if k in plan}


@kopf.index("pods", labels={DEPLOYMENT_LABEL: kopf.PRESENT})
def pods_by_lmd(body: kopf.Body, **_: Any) -> dict[Key, PodInfo]:
    return {_owner_key(body): summarize(body)}


@kopf.index("apps", "v1", "deployments", labels={DEPLOYMENT_LABEL: kopf.PRESENT})
def deployments_by_lmd(body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {_owner_key(body): deployment_record(body)}


@kopf.index(*LMD)
def lmds_by_name(body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {(str(body.metadata.namespace), body.metadata.name): lmd_record(body)}
