"""Pure manifest rendering: a LanguageModelDeployment and its capacity plan in, plain dicts out.

No I/O and no Kubernetes client: the reconciler adds owner references (`owner_reference`)
and applies the results with server-side apply; the scaler applies `render_replicas` under
its own field manager.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lmscale.api import LanguageModelDeployment, RoutingMode
from lmscale.planner.plan import CapacityPlan
from lmscale.render import activation, inference_pool, route
from lmscale.render.claim import render_model_cache_claim
from lmscale.render.deployment import render_deployment, render_replicas
from lmscale.render.inference_pool import (
    render_endpoint_picker,
    render_inference_pool,
)
from lmscale.render.ingress import render_ingress
from lmscale.render.meta import (
    DEPLOYMENT_LABEL,
    VARIANT_LABEL,
    labels,
    owner_reference,
    selector,
    selector_labels,
    variant_name,
)
from lmscale.render.pdb import render_pdb
from lmscale.render.route import render_http_route
from lmscale.render.service import render_service


@dataclass(frozen=True)
class Children:
    """Every child of one LanguageModelDeployment; None for a child that must not exist."""

    deployment: dict[str, Any]
    service: dict[str, Any]
    ingress: dict[str, Any] | None
    pdb: dict[str, Any] | None
    model_cache_claim: dict[str, Any] | None
    http_route: dict[str, Any] | None = None
    inference_pool: dict[str, Any] | None = None
    endpoint_picker: tuple[dict[str, Any], ...] = ()
    # One Deployment per accelerator.fallbacks type, in the spec's order.
    variants: tuple[dict[str, Any], ...] = ()
    # behind the activator (render.activation): the Service the activator forwards to; the
    # model Service's EndpointSlice is written from live pods, not rendered here
    pods_service: dict[str, Any] | None = None

    def present(self) -> list[dict[str, Any]]:
        """The manifests to apply, claim first so the Deployment's pods can mount it; the
        picker before the pool that names it, the pool before the route to it."""
        ordered = [self.model_cache_claim, self.deployment, *self.variants,
                   self.pods_service, self.service, self.ingress, self.pdb,
                   *self.endpoint_picker, self.inference_pool, self.http_route]
        return [m for m in ordered if m is not None]

    def absent(self, name: str) -> list[tuple[str, str, str]]:
        """(apiVersion, kind, name) of the optional children of model `name` to delete if
        they exist."""
        optional = {
            ("networking.k8s.io/v1", "Ingress", name): self.ingress,
            ("policy/v1", "PodDisruptionBudget", name): self.pdb,
            (route.API_VERSION, "HTTPRoute", name): self.http_route,
            (inference_pool.API_VERSION, "InferencePool", name): self.inference_pool,
        }
        gone = [key for key, manifest in optional.items() if manifest is None]
        if not self.endpoint_picker:
            picker = inference_pool.picker_name(name)
            gone += [(api_version, kind, picker) for api_version, kind in PICKER_KINDS]
        if self.pods_service is None:
            # the Service selects its pods again: lmscale's slice beside the controller's
            # would keep sending requests to the activator
            gone += [("discovery.k8s.io/v1", "EndpointSlice", name),
                     ("v1", "Service", activation.pods_service_name(name))]
        return gone


# What render_endpoint_picker makes, in the order it makes them.
PICKER_KINDS = (("v1", "ConfigMap"), ("v1", "ServiceAccount"),
                ("rbac.authorization.k8s.io/v1", "Role"),
                ("rbac.authorization.k8s.io/v1", "RoleBinding"), ("apps/v1", "Deployment"),
                ("v1", "Service"))


def render_children(lmd: LanguageModelDeployment, plan: CapacityPlan, *,
                    endpoint_picker_image: str = inference_pool.DEFAULT_IMAGE,
                    fallback_plans: Sequence[CapacityPlan] = (),
                    activator: bool = False) -> Children:
    """All children of `lmd` for the replica `plan` (and one per fallback type's plan);
    `activator`: one is installed (render.activation)."""
    fallbacks = lmd.spec.accelerator.fallbacks
    if len(fallback_plans) != len(fallbacks):
        raise ValueError(f"{len(fallbacks)} fallback types but {len(fallback_plans)} plans")
    fronted = activation.fronted(lmd, activator=activator)
    return Children(
        deployment=render_deployment(lmd, plan),
        variants=tuple(render_deployment(lmd, p, variant=f.type)
                       for f, p in zip(fallbacks, fallback_plans, strict=True)),
        service=render_service(lmd, fronted=fronted),
        pods_service=activation.render_pods_service(lmd, plan) if fronted else None,
        ingress=render_ingress(lmd) if lmd.spec.routing.mode is RoutingMode.INGRESS else None,
        pdb=render_pdb(lmd),
        model_cache_claim=render_model_cache_claim(lmd),
        http_route=render_http_route(lmd),
        inference_pool=render_inference_pool(lmd),
        endpoint_picker=tuple(render_endpoint_picker(lmd, image=endpoint_picker_image)),
    )


__all__ = [
    "DEPLOYMENT_LABEL",
    "VARIANT_LABEL",
    "Children",
    "labels",
    "owner_reference",
    "render_children",
    "render_deployment",
    "render_endpoint_picker",
    "render_http_route",
    "render_inference_pool",
    "render_ingress",
    "render_model_cache_claim",
    "render_pdb",
    "render_replicas",
    "render_service",
    "selector",
    "selector_labels",
    "variant_name",
]
