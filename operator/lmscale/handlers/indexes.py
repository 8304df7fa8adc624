"""In-memory indexes of the children the scaling loop reads every cycle (no list calls)."""

from __future__ import annotations

from typing import Any

import kopf

from lmscale.controller.pods import PodInfo, summarize
from lmscale.handlers.names import DEPLOYMENT_LABEL, LMD

Key = tuple[str, str]


def _owner_key(body: kopf.Body) -> Key:
    return str(body.metadata.namespace), body.metadata.labels[DEPLOYMENT_LABEL]


@kopf.index("pods", labels={DEPLOYMENT_LABEL: kopf.PRESENT})
def pods_by_lmd(body: kopf.Body, **_: Any) -> dict[Key, PodInfo]:
    return {_owner_key(body): summarize(body)}


@kopf.index("apps", "v1", "deployments", labels={DEPLOYMENT_LABEL: kopf.PRESENT})
def deployments_by_lmd(body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {_owner_key(body): {"metadata": dict(body.metadata), "spec": dict(body.spec),
                               "status": dict(body.status)}}


@kopf.index(*LMD)
def lmds_by_name(body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {(str(body.metadata.namespace), body.metadata.name): {
        "apiVersion": body["apiVersion"], "kind": body["kind"],
        "metadata": dict(body.metadata), "spec": dict(body.spec),
        "status": dict(body.get("status") or {})}}
