"""The Gateway API HTTPRoute of routing.mode gateway (to the Service) or inferencePool (to
the InferencePool), attached to the Gateways in routing.parentRefs.

Gateway implementations cut requests at their own default timeout (Envoy's route timeout is
15 s), which ends a token stream mid-answer; the route sets `timeouts.request` and
`timeouts.backendRequest` to routing.requestTimeoutSeconds.
"""

from __future__ import annotations

from typing import Any

from lmscale.api import LanguageModelDeployment, RoutingMode
from lmscale.render import meta

API_VERSION = "gateway.networking.k8s.io/v1"
POOL_GROUP = "inference.networking.k8s.io"


def _parent_ref(ref: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                           "name": ref.name}
    if ref.namespace:
        out["namespace"] = ref.namespace
    if ref.section_name:
        out["sectionName"] = ref.section_name
    return out


def backend_ref(lmd: LanguageModelDeployment) -> dict[str, Any]:
    """The Service (mode gateway) or the InferencePool of the same name (mode inferencePool)."""
    if lmd.spec.routing.mode is RoutingMode.INFERENCE_POOL:
        return {"group": POOL_GROUP, "kind": "InferencePool", "name": lmd.name}
    return {"group": "", "kind": "Service", "name": lmd.name, "port": lmd.spec.service.port}


def render_http_route(lmd: LanguageModelDeployment) -> dict[str, Any] | None:
    """The HTTPRoute, or None in routing.mode ingress (the caller deletes it)."""
    routing = lmd.spec.routing
    if routing.mode is RoutingMode.INGRESS:
        return None
    timeout = f"{routing.request_timeout_seconds}s"
    rule = {
        "matches": [{"path": {"type": "PathPrefix", "value": p}} for p in routing.paths],
        "backendRefs": [backend_ref(lmd)],
        "timeouts": {"request": timeout, "backendRequest": timeout},
    }
    spec: dict[str, Any] = {"parentRefs": [_parent_ref(r) for r in routing.parent_refs],
                            "rules": [rule]}
    if routing.hostnames:
        spec["hostnames"] = list(routing.hostnames)
    return {"apiVersion": API_VERSION, "kind": "HTTPRoute", "metadata": meta.metadata(lmd),
            "spec": spec}
