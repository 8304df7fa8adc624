"""A child deleted or edited by hand: put it back as the spec says (server-side apply).

Children change all the time without anyone editing them: a Deployment's status moves with
its rollout, a PodDisruptionBudget's with pod health, and the scaler's own `replicas`
apply moves a Deployment's spec. Re-applying on each such event made an idle fleet busy,
so a child is applied again only when it is gone, or when what lmscale rendered is no
longer in it. Status-only events are recognised without any work (the spec, labels,
annotations and owners are as last seen); a changed spec is compared with the rendered
manifest (every field lmscale sets must be there with its value).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import kopf

from lmscale.api.resource import API_VERSION, KIND
from lmscale.controller.desired import Desired, Invalid, Pending, desired_state
from lmscale.handlers.names import MANAGED
from lmscale.k8s import reconcile
from lmscale.k8s.client import ApiException, namespace_gone

CHILD_KINDS = (
    ("apps", "v1", "deployments"),
    ("", "v1", "services"),
    ("networking.k8s.io", "v1", "ingresses"),
    ("policy", "v1", "poddisruptionbudgets"),
)
# Rendered children kept for the comparison: one per resource whose child changed lately.
DESIRED_CACHE = 256


def _owner_name(body: Mapping[str, Any]) -> str | None:
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("apiVersion") == API_VERSION and ref.get("kind") == KIND:
            return str(ref["name"])
    return None


def fingerprint(body: Mapping[str, Any]) -> str:
    """What a hand edit changes and a status update does not (pure)."""
    meta = body.get("metadata") or {}
    shape = {"spec": body.get("spec"), "labels": meta.get("labels"),
             "annotations": meta.get("annotations"), "owners": meta.get("ownerReferences")}
    return hashlib.blake2b(json.dumps(shape, sort_keys=True, default=str).encode(),
                           digest_size=16).hexdigest()


def contains(live: Any, wanted: Any) -> bool:
    """Whether every field of `wanted` is in `live` with the same value (pure).

    The apiserver adds defaults (so `live` may hold more), writes quantities as strings
    (so 1 and "1" are the same value) and leaves empty fields out (so a rendered `env: []`
    matches no `env`). Lists must match item for item.
    """
    if isinstance(wanted, Mapping):
        return isinstance(live, Mapping) and all(
            contains(live[k], v) if k in live else v in (None, [], {})
            for k, v in wanted.items())
    if isinstance(wanted, list):
        return (isinstance(live, list) and len(live) == len(wanted)
                and all(contains(a, b) for a, b in zip(live, wanted, strict=True)))
    if isinstance(wanted, bool) or isinstance(live, bool):
        return live is wanted
    if isinstance(wanted, int | float) and isinstance(live, str | int | float):
        return str(live) == str(wanted) or _number(live) == wanted
    return bool(live == wanted)


def _number(value: str | int | float) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


class _Desired:
    """Rendered children per (uid, generation), the most recent few."""

    def __init__(self) -> None:
        self._items: OrderedDict[tuple[str, int], Desired | Invalid] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, parent: Mapping[str, Any]) -> Desired | Invalid | Pending:
        meta = parent["metadata"]
        key = (str(meta.get("uid")), int(meta.get("generation", 0)))
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        outcome = desired_state(parent, wait=False)
        if isinstance(outcome, Pending):
            return outcome  # the reconciler applies the children once it is chosen
        with self._lock:
            self._items[key] = outcome
            while len(self._items) > DESIRED_CACHE:
                self._items.popitem(last=False)
        return outcome


def shared_state(memo: kopf.Memo) -> tuple[dict[tuple[str, str, str], str], _Desired]:
    if "drift_seen" not in memo:
        memo.setdefault("drift_seen", {})
        memo.setdefault("drift_desired", _Desired())
    return memo.drift_seen, memo.drift_desired


def _rendered(desired: Desired, kind: str, name: str) -> Mapping[str, Any] | None:
    return next((m for m in desired.manifests
                 if m["kind"] == kind and m["metadata"]["name"] == name), None)


async def child_event(event: dict[str, Any], body: kopf.Body, memo: kopf.Memo,
                      logger: kopf.Logger, **_: Any) -> None:
    """On the event loop, since nearly every event is a status move or a listing, told
    apart without work; only a changed child goes to a handler thread to be compared with
    its rendering (and restored). A thread hop per event held every child's event behind
    the reconciles (a restart's listing of 3,000 children, a creation burst's updates)."""
    owner = _owner_name(body)
    if owner is None or event["type"] not in ("MODIFIED", "DELETED"):
        return
    namespace, kind, name = str(body.metadata.namespace), str(body.get("kind")), body.metadata.name
    seen = shared_state(memo)[0]
    key = (kind, namespace, name)
    if event["type"] == "MODIFIED":
        now = fingerprint(body)
        if seen.get(key) == now:
            return  # status moved, nothing lmscale renders
        seen[key] = now
    else:
        seen.pop(key, None)
    parents = memo.indexes.lmds.get((namespace, owner), ())
    if not parents or parents[-1]["metadata"].get("deletionTimestamp"):
        return  # the owner is going: garbage collection removes the children
    restore = functools.partial(contextvars.copy_context().run, _restore, event["type"], body,
                                parents[-1], memo, logger)  # kopf.event needs the context
    await asyncio.get_running_loop().run_in_executor(memo.get("executor"), restore)


def _restore(event_type: str, body: kopf.Body, parent: Any, memo: kopf.Memo,
             logger: kopf.Logger) -> None:
    """Apply the resource's children if `body` is gone or lost what lmscale rendered."""
    outcome = shared_state(memo)[1].of(parent)
    if not isinstance(outcome, Desired):
        return
    if event_type == "MODIFIED":
        rendered = _rendered(outcome, str(body.get("kind")), body.metadata.name)
        if rendered is None or contains(body, rendered):
            return  # lmscale's own write (replicas), or nothing of ours was touched
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
