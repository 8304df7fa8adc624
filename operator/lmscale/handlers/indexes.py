"""In-memory indexes of the children the scaling loop reads every cycle (no list calls)."""

from __future__ import annotations

from typing import Any

import kopf

from lmscale.controller.pods import PodInfo, summarize
from lmscale.handlers.names import DEPLOYMENT_LABEL, LMD


@kopf.index("pods", labels={DEPLOYMENT_LABEL: kopf.PRESENT})
def pods_by_lmd(body: kopf.Body, **_: Any) -> dict[tuple[str, str], PodInfo]:
    return {(body.metadata.namespace, body.metadata.labels[DEPLOYMENT_LABEL]): summarize(body)}


@kopf.index("apps", "v1", "deployments", labels={DEPLOYMENT_LABEL: kopf.PRESENT})
def deployments_by_lmd(body: kopf.Body, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(body.metadata.namespace, body.metadata.labels[DEPLOYMENT_LABEL]): {
        "metadata": dict(body.metadata), "spec": dict(body.spec), "status": dict(body.status)}}


@kopf.index(*LMD)
def lmds_by_name(body: kopf.Body, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(body.metadata.namespace, body.metadata.name): {
        "apiVersion": body["apiVersion"], "kind": body["kind"], "metadata": dict(body.metadata), "spec": dict(body.spec),
        "status": dict(body.get("status") or {})}}
