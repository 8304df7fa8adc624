"""In-memory indexes of what the scaling loop reads every cycle (no list calls).

Kept by watch handlers (`kopf.on.event`), not `kopf.index`: before it runs any handler after
a start, kopf holds every object's worker until each indexed object has been indexed, and
each one indexed wakes every held worker to check them all again. At 1,000 resources (3,000
indexed objects) that was half the CPU and most of the 40 s of a restart. What kopf's gate
ensured, the handlers that need it now ask for (`Indexes.synced`).

Each index keeps a small record, not the object: pods as a frozen `PodInfo`; Deployments
as the few fields the conditions read (replicas, generation, status); resources as their
spec and the scaler's part of status, without managedFields, annotations (kubectl's
last-applied copy of the spec among them) or kopf's own bookkeeping. A fleet of 1,000
resources then holds kilobytes per resource, not the bodies the watches deliver.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

import kopf

from lmscale.controller.pods import PodInfo, summarize
from lmscale.handlers.names import DEPLOYMENT_LABEL, LMD, VARIANT_LABEL
from lmscale.render.activation import WAKE_ANNOTATION

Key = tuple[str, str]
K = TypeVar("K")
V = TypeVar("V")
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


class Index(Mapping[K, tuple[V, ...]], Generic[K, V]):
    """key -> the records of the objects under it, in the order they were first seen (the
    last is the newest object: a resource deleted and created again under its name)."""

    def __init__(self) -> None:
        self._stores: dict[K, dict[str, V]] = {}
        self._keys: dict[str, K] = {}  # uid -> key
        self._lock = threading.Lock()  # handlers write on the loop, the scaler reads in a thread

    def put(self, uid: str, key: K, record: V) -> None:
        with self._lock:
            old = self._keys.get(uid)
            if old is not None and old != key:
                self._remove(uid, old)
            self._stores.setdefault(key, {})[uid] = record
            self._keys[uid] = key

    def drop(self, uid: str) -> None:
        with self._lock:
            key = self._keys.pop(uid, None)
            if key is not None:
                self._remove(uid, key)

    def _remove(self, uid: str, key: K) -> None:
        store = self._stores.get(key, {})
        store.pop(uid, None)
        if not store:
            self._stores.pop(key, None)

    def __getitem__(self, key: K) -> tuple[V, ...]:
        with self._lock:
            return tuple(self._stores[key].values())

    def __iter__(self) -> Iterator[K]:
        with self._lock:
            return iter(list(self._stores))

    def __len__(self) -> int:
        return len(self._stores)

    def objects(self) -> int:
        return len(self._keys)

    def snapshot(self) -> dict[K, list[V]]:
        """Every key's records at one moment."""
        with self._lock:
            return {key: list(store.values()) for key, store in self._stores.items()}


@dataclasses.dataclass
class Indexes:
    """What the handlers and the scaling loop read; created at start-up, on the memo."""

    lmds: Index[Key, dict[str, Any]] = dataclasses.field(default_factory=Index)
    deployments: Index[Key, dict[str, Any]] = dataclasses.field(default_factory=Index)
    pods: Index[Key, PodInfo] = dataclasses.field(default_factory=Index)
    # The activator's own EndpointSlices (handlers.endpoints), when the chart installs one.
    activator_slices: Index[str, dict[str, Any]] = dataclasses.field(default_factory=Index)
    # Set once every index holds what the apiserver listed at the start (or that wait gave
    # up): until then a missing pod may only be one not listed yet.
    synced: threading.Event = dataclasses.field(default_factory=threading.Event)


def keep(index_of: Callable[[Indexes], Index[K, V]], key_of: Callable[[kopf.Body], K],
         record_of: Callable[[kopf.Body], V]) -> Callable[..., Any]:
    """A watch handler that keeps each object's record in its index (on the event loop:
    a record is cheap, a hop to a handler thread per event is not)."""
    async def on_event(event: Mapping[str, Any], body: kopf.Body, memo: kopf.Memo,
                       **_: Any) -> None:
        index = index_of(memo.indexes)
        if event.get("type") == "DELETED":
            index.drop(str(body.metadata.uid))
        else:
            index.put(str(body.metadata.uid), key_of(body), record_of(body))
    return on_event


def _lmd_key(body: kopf.Body) -> Key:
    return str(body.metadata.namespace), body.metadata.name


kopf.on.event("pods", id="pods_by_lmd", labels={DEPLOYMENT_LABEL: kopf.PRESENT})(
    keep(lambda i: i.pods, _owner_key, summarize))
kopf.on.event("apps", "v1", "deployments", id="deployments_by_lmd",
              labels={DEPLOYMENT_LABEL: kopf.PRESENT})(
    keep(lambda i: i.deployments, _owner_key, deployment_record))
kopf.on.event(*LMD, id="lmds_by_name")(keep(lambda i: i.lmds, _lmd_key, lmd_record))
