"""Kubernetes Events about a LanguageModelDeployment, posted from outside kopf's handlers.

kopf's `kopf.event` works only inside a handler (it needs the handler's context), and
the scaling loop is not one; this posts the same core/v1 Event directly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from lmscale.k8s.client import Kube

log = logging.getLogger(__name__)
COMPONENT = "lmscale"
MESSAGE_LIMIT = 1024


def event_body(obj: Mapping[str, Any], *, type_: str, reason: str, message: str,
               now: datetime) -> dict[str, Any]:
    """The Event manifest (pure): about `obj`, named after it, in its namespace."""
    meta = obj["metadata"]
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                           "name": meta["name"], "namespace": meta["namespace"],
                           "uid": meta.get("uid")},
        "type": type_, "reason": reason, "message": message[:MESSAGE_LIMIT],
        "source": {"component": COMPONENT}, "reportingComponent": COMPONENT,
        "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
    }


def post(kube: Kube, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
    """Post one Event; a failure is logged, never raised (an Event is not worth a retry)."""
    body = event_body(obj, type_=type_, reason=reason, message=message, now=datetime.now(UTC))
    try:
        kube.create(body, timeout=(5.0, 10.0))
    except Exception as error:  # noqa: BLE001
        log.warning("event %s on %s/%s not posted: %s", reason, body["metadata"]["namespace"],
                    obj["metadata"]["name"], error)

