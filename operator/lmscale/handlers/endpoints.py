"""The EndpointSlice of each model behind the activator: pods once Ready, else the activator
(with `routing.activator: always`, the activator while it has a Ready endpoint).

Written when what it points at changes: a model pod's readiness (pod events), the
activator's own endpoints (its Service's EndpointSlices, watched only when the chart
installs an activator), a spec change (the reconciler), and at each scaling cycle as a
repair. A slice is applied only when it differs from the one this process wrote last, so a
steady fleet writes nothing.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import kopf

from lmscale import render, settings
from lmscale.controller.desired import Resolved, resolve
from lmscale.controller.pods import PodInfo
from lmscale.handlers.indexes import Index, Indexes, keep
from lmscale.handlers.names import DEPLOYMENT_LABEL
from lmscale.k8s.client import TEMPLATE_MANAGER, ApiException, Kube, namespace_gone
from lmscale.render import activation

log = logging.getLogger(__name__)
Key = tuple[str, str]
ACTIVATOR_KEY = "activator"
_lock = threading.Lock()


def slices_written(memo: kopf.Memo) -> dict[Key, str]:
    if "endpoint_slices" not in memo:
        memo.setdefault("endpoint_slices", {})
    return memo.endpoint_slices  # type: ignore[no-any-return]


def activator_of(index: Index[str, Any]) -> activation.Activator:
    """The activator's Ready endpoints, from the index of its Service's slices."""
    return activation.activator_from_slices(list(index.get(ACTIVATOR_KEY, ())))


def sync(kube: Kube, written: dict[Key, str], record: Mapping[str, Any],
         pods: Sequence[PodInfo], activator: activation.Activator) -> bool:
    """Apply the model's EndpointSlice if it is behind the activator and changed; True if
    written."""
    meta = record["metadata"]
    key = (str(meta["namespace"]), str(meta["name"]))
    resolved = resolve(record, wait=False)
    if (meta.get("deletionTimestamp") or not isinstance(resolved, Resolved)
            or not activation.fronted(resolved.lmd, activator=True)):
        written.pop(key, None)  # the reconciler deletes a slice that should not exist
        return False
    with _lock:  # the newest view is applied last
        manifest = activation.render_endpoint_slice(resolved.lmd, pods=pods,
                                                    activator=activator)
        if manifest["metadata"]["labels"][activation.TARGET_LABEL] == "none":
            # no Ready pod and no activator endpoint known (yet: the watches are still
            # filling after a restart): the slice there points at the better guess
            return False
        manifest["metadata"]["ownerReferences"] = [render.owner_reference(record)]
        text = json.dumps(manifest, sort_keys=True)
        if written.get(key) == text:
            return False
        try:
            kube.apply(manifest, field_manager=TEMPLATE_MANAGER)
        except ApiException as error:
            if namespace_gone(error):
                return False
            raise
        written[key] = text
        return True


def sync_all(memo: kopf.Memo, lmds: Mapping[Key, Mapping[str, Any]],
             pods: Mapping[Key, Sequence[PodInfo]], activator: activation.Activator) -> int:
    """Every model's slice (the scaling loop's repair pass); how many were written."""
    written = slices_written(memo)
    for key in [k for k in written if k not in lmds]:
        written.pop(key, None)
    return sum(sync(memo.kube, written, record, list(pods.get(key, ())), activator)
               for key, record in lmds.items())


def sync_one(memo: kopf.Memo, key: Key) -> None:
    """One model's slice, from the indexes once they hold what exists: before that, a pod
    not listed yet would be left out of its slice (the scaling loop's repair pass, which
    starts once they do, writes it then)."""
    index: Indexes = memo.indexes
    if settings.activator_service() is None or not index.synced.is_set():
        return
    records = index.lmds.get(key, ())
    if not records:
        return
    sync(memo.kube, slices_written(memo), records[-1], list(index.pods.get(key, ())),
         activator_of(index.activator_slices))


def pod_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    sync_one(memo, (str(body.metadata.namespace), body.metadata.labels[DEPLOYMENT_LABEL]))


def activator_changed(memo: kopf.Memo, **_: Any) -> None:
    for key in list(memo.indexes.lmds):
        try:
            sync_one(memo, key)
        except ApiException as error:  # one model must not stop the rest
            log.warning("EndpointSlice of %s/%s not written (the next cycle retries): %s",
                        *key, error)


def activator_slice(body: kopf.Body) -> dict[str, Any]:
    return {"ports": list(body.get("ports") or []),
            "endpoints": list(body.get("endpoints") or [])}


def register(service: tuple[str, str] | None) -> None:
    """Watch the activator's slices and the model pods' readiness, when there is one."""
    if service is None:
        return
    namespace, name = service

    def is_activators(body: kopf.Body, **_: Any) -> bool:
        return (body.metadata.namespace == namespace
                and body.metadata.labels.get(activation.SERVICE_NAME_LABEL) == name)

    kopf.on.event("discovery.k8s.io", "v1", "endpointslices", id="activator_slices",
                  when=is_activators)(
        keep(lambda i: i.activator_slices, lambda _: ACTIVATOR_KEY, activator_slice))
    kopf.on.event("discovery.k8s.io", "v1", "endpointslices", id="activator_changed",
                  when=is_activators)(activator_changed)
    kopf.on.event("pods", id="model_pod_changed",
                  labels={DEPLOYMENT_LABEL: kopf.PRESENT})(pod_changed)


register(settings.activator_service())
