"""Scale from zero behind the activator (Knative's serverless service, for one model). Pure.

A model that may sit at zero replicas keeps its Service (name, port, address), but without
a selector: lmscale writes that Service's EndpointSlice itself, pointing at the activator's
pods while the model has no Ready pod (the activator holds the requests and wakes the
model) and at the model's Ready pods once it has one. A second Service, `<model>-pods`,
selects the pods as the model's Service did; it is what the activator forwards to, and its
labels and annotations are the activator's table of models (hosts, served name, hold
timeout), so every activator replica learns every model from the cluster.

With `routing.activator: always` the slice stays on the activator with pods Ready too: every
request passes the activator's arrival counter (the scaler's leading signal at any replica
count), and the activator forwards it to `<model>-pods`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from lmscale.api import ActivatorMode, LanguageModelDeployment, RoutingMode
from lmscale.controller.pods import PodInfo
from lmscale.gateway import hold
from lmscale.planner.plan import CapacityPlan
from lmscale.render import deployment, meta

ACTIVATOR_LABEL = "lmscale.dev/activator"  # on <model>-pods: "backend"
BACKEND = "backend"
FRONTEND = "frontend"  # on a fronted model's own Service: its ClusterIP names the model
HOSTS_ANNOTATION = "lmscale.dev/activator-hosts"
SERVED_ANNOTATION = "lmscale.dev/served-model"
HOLD_ANNOTATION = "lmscale.dev/hold-timeout-seconds"
# On the LanguageModelDeployment: the activator's "a request is waiting" (RFC 3339 time).
WAKE_ANNOTATION = "lmscale.dev/wake-requested-at"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SLICE_MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
SLICE_MANAGER = "lmscale.dev"  # not endpointslice-controller.k8s.io: that one leaves it alone
TARGET_LABEL = "lmscale.dev/endpoints"  # activator | pods: where the slice points now
SUFFIX = "-pods"


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """A Ready address of the activator (from its Service's EndpointSlices)."""

    ip: str
    pod: str | None = None
    namespace: str | None = None
    node: str | None = None


@dataclasses.dataclass(frozen=True)
class Activator:
    """The activator's Ready endpoints and the port they serve requests on."""

    endpoints: tuple[Endpoint, ...] = ()
    port: int | None = None


def fronted(lmd: LanguageModelDeployment, *, activator: bool) -> bool:
    """Whether the model's Service is switched between the activator and the pods.

    With an activator installed and a routing mode that reaches the pods through the
    Service (an InferencePool picks pods by label and would never send anything to the
    activator): a model that can be at zero (scaling on with scaleToZero), or any model with
    `routing.activator: always`.
    """
    if not activator or lmd.spec.routing.mode is RoutingMode.INFERENCE_POOL:
        return False
    scaling = lmd.spec.scaling
    return (always(lmd)
            or (scaling.enabled and scaling.scale_to_zero.enabled))


def always(lmd: LanguageModelDeployment) -> bool:
    """`routing.activator: always`: the slice stays on the activator with pods Ready."""
    return lmd.spec.routing.activator is ActivatorMode.ALWAYS


def pods_service_name(name: str) -> str:
    return name + SUFFIX


def hosts(lmd: LanguageModelDeployment) -> list[str]:
    """Host headers that mean this model: its Service's DNS names and its public hosts."""
    name, namespace = lmd.name, lmd.namespace
    found = [f"{name}.{namespace}", f"{name}.{namespace}.svc",
             f"{name}.{namespace}.svc.cluster.local"]
    if lmd.spec.ingress.enabled and lmd.spec.ingress.host:
        found.append(lmd.spec.ingress.host)
    found += [h for h in lmd.spec.routing.hostnames if not h.startswith("*")]
    return list(dict.fromkeys(found))


def render_pods_service(lmd: LanguageModelDeployment, plan: CapacityPlan) -> dict[str, Any]:
    """The Service that selects the pods, for the activator; its marks are the route (the
    hold timeout from the plan's cold start unless the spec sets one)."""
    hold_s = hold.timeout_for(plan.cold_start_seconds, lmd.spec.routing.hold_timeout_seconds)
    metadata = meta.metadata(lmd, name=pods_service_name(lmd.name))
    metadata["labels"] = {**metadata["labels"], ACTIVATOR_LABEL: BACKEND}
    metadata["annotations"] = {
        HOSTS_ANNOTATION: ",".join(hosts(lmd)),
        SERVED_ANNOTATION: lmd.spec.model.name,
        HOLD_ANNOTATION: str(int(hold_s)),
    }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "type": "ClusterIP",
            "selector": meta.selector_labels(lmd.name),
            "ports": [{"name": deployment.PORT_NAME, "port": lmd.spec.service.port,
                       "targetPort": deployment.PORT_NAME, "protocol": "TCP"}],
        },
    }


def serving(pods: Sequence[PodInfo]) -> list[PodInfo]:
    """Pods that take requests: Ready, not terminating, with an address."""
    return sorted((p for p in pods if p.ready and not p.terminating and p.ip),
                  key=lambda p: p.name)


def render_endpoint_slice(lmd: LanguageModelDeployment, *, pods: Sequence[PodInfo],
                          activator: Activator) -> dict[str, Any]:
    """The model Service's EndpointSlice: the Ready pods, else the activator, else empty.

    Never both: one slice has one port list, and a request sent to the activator while a
    pod is Ready would only be forwarded to that pod anyway. With `routing.activator:
    always` the activator comes first, and the Ready pods only while no activator endpoint
    is Ready (an activator outage then costs the arrival signal, not the requests).
    """
    ready = serving(pods)
    reachable = activator.port if activator.endpoints else None  # its port, if any Ready
    if ready and not (always(lmd) and reachable is not None):
        target, port = "pods", lmd.spec.engine.port
        endpoints = [_endpoint(p.ip or "", "Pod", p.name, p.namespace, None) for p in ready]
    elif reachable is not None:
        target, port = "activator", reachable
        endpoints = [_endpoint(e.ip, "Pod", e.pod, e.namespace, e.node)
                     for e in sorted(activator.endpoints, key=lambda e: e.ip)]
    else:
        target, port, endpoints = "none", lmd.spec.engine.port, []
    family = "IPv6" if endpoints and ":" in endpoints[0]["addresses"][0] else "IPv4"
    endpoints = [e for e in endpoints if (":" in e["addresses"][0]) == (family == "IPv6")]
    metadata = meta.metadata(lmd)
    metadata["labels"] = {**metadata["labels"], SERVICE_NAME_LABEL: lmd.name,
                          SLICE_MANAGED_BY_LABEL: SLICE_MANAGER, TARGET_LABEL: target}
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": metadata,
        "addressType": family,
        "ports": [{"name": deployment.PORT_NAME, "port": port, "protocol": "TCP"}],
        "endpoints": endpoints,
    }


def _endpoint(ip: str, kind: str, name: str | None, namespace: str | None,
              node: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"addresses": [ip],
                           "conditions": {"ready": True, "serving": True, "terminating": False}}
    if name:
        out["targetRef"] = {"kind": kind, "name": name,
                            **({"namespace": namespace} if namespace else {})}
    if node:
        out["nodeName"] = node
    return out


def activator_from_slices(slices: Sequence[dict[str, Any]]) -> Activator:
    """The activator's Ready endpoints and proxy port, from its Service's EndpointSlices."""
    endpoints: dict[str, Endpoint] = {}
    port: int | None = None
    for body in slices:
        for p in body.get("ports") or []:
            if p.get("name") == deployment.PORT_NAME and p.get("port"):
                port = int(p["port"])
        for e in body.get("endpoints") or []:
            if (e.get("conditions") or {}).get("ready") is False:
                continue
            ref = e.get("targetRef") or {}
            for ip in e.get("addresses") or []:
                endpoints[ip] = Endpoint(ip, ref.get("name"), ref.get("namespace"),
                                         e.get("nodeName"))
    return Activator(tuple(endpoints[ip] for ip in sorted(endpoints)), port)
