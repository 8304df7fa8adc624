"""Pure manifest rendering: a LanguageModelDeployment and its capacity plan in, plain dicts out.

No I/O and no Kubernetes client: the reconciler adds owner references (`owner_reference`)
and applies the results with server-side apply; the scaler applies `render_replicas` under
its own field manager.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lmscale.api import LanguageModelDeployment
from lmscale.planner.plan import CapacityPlan
from lmscale.render.claim import render_model_cache_claim
from lmscale.render.deployment import render_deployment, render_replicas
from lmscale.render.ingress import render_ingress
from lmscale.render.meta import labels, owner_reference, selector, selector_labels
from lmscale.render.pdb import render_pdb
from lmscale.render.service import render_service


@dataclass(frozen=True)
class Children:
    """Every child of one LanguageModelDeployment; None for a child that must not exist."""

    deployment: dict[str, Any]
    service: dict[str, Any]
    ingress: dict[str, Any] | None
    pdb: dict[str, Any] | None
    model_cache_claim: dict[str, Any] | None

    def present(self) -> list[dict[str, Any]]:
        """The manifests to apply, claim first so the Deployment's pods can mount it."""
        ordered = [self.model_cache_claim, self.deployment, self.service, self.ingress, self.pdb]
        return [m for m in ordered if m is not None]

    def absent(self) -> list[tuple[str, str]]:
        """(apiVersion, kind) of the optional children to delete if they exist."""
        optional = {
            ("networking.k8s.io/v1", "Ingress"): self.ingress,
            ("policy/v1", "PodDisruptionBudget"): self.pdb,
        }
        return [key for key, manifest in optional.items() if manifest is None]


def render_children(lmd: LanguageModelDeployment, plan: CapacityPlan) -> Children:
    """All children of `lmd` for the replica `plan`."""
    return Children(
        deployment=render_deployment(lmd, plan),
        service=render_service(lmd),
        ingress=render_ingress(lmd),
        pdb=render_pdb(lmd),
        model_cache_claim=render_model_cache_claim(lmd),
    )


__all__ = [
    "Children",
    "labels",
    "owner_reference",
    "render_children",
    "render_deployment",
    "render_ingress",
    "render_model_cache_claim",
    "render_pdb",
    "render_replicas",
    "render_service",
    "selector",
    "selector_labels",
]
