"""Labels, selectors, names and owner references shared by every child manifest.

Children never inherit the parent's labels or annotations: Argo CD tracks what it manages
with a label (`app.kubernetes.io/instance` by default) or an annotation
(`argocd.argoproj.io/tracking-id`) on the LanguageModelDeployment, and a child copying that
mark would look like an extra resource of the Application. Ownership is expressed with an
ownerReference on every child, which Argo CD's gitops-engine also honours: an object with
ownerReferences is shown as a child and never pruned as a top-level resource.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lmscale.api import LanguageModelDeployment

DEPLOYMENT_LABEL = "lmscale.dev/deployment"
# On a fallback GPU type's Deployment and pods: its type. The primary's carry none (so an
# operator that learned fallbacks leaves every existing Deployment's template as it was).
VARIANT_LABEL = "lmscale.dev/variant"
MANAGED_BY = "lmscale"
COMPONENT = "model-server"


def selector_labels(name: str) -> dict[str, str]:
    """The one label that selects a deployment's pods; stable for its lifetime.

    A Deployment's selector is immutable, so nothing that a spec change can alter (the engine
    kind, the model) may appear here.
    """
    return {DEPLOYMENT_LABEL: name}


def selector(name: str) -> str:
    """The selector as a string, for status.selector and the scale subresource."""
    return ",".join(f"{k}={v}" for k, v in selector_labels(name).items())


def labels(lmd: LanguageModelDeployment) -> dict[str, str]:
    """Labels on every child and on the pods."""
    return {
        "app.kubernetes.io/name": lmd.spec.engine.kind.value,
        "app.kubernetes.io/instance": lmd.name,
        "app.kubernetes.io/component": COMPONENT,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        **selector_labels(lmd.name),
    }


def metadata(lmd: LanguageModelDeployment, *, name: str | None = None) -> dict[str, Any]:
    """metadata of a child: its name (the parent's by default), namespace and labels."""
    return {"name": name or lmd.name, "namespace": lmd.namespace, "labels": labels(lmd)}


def variant_name(name: str, gpu_type: str) -> str:
    """Name of the Deployment of a fallback GPU type: <name>-<type> (the primary: <name>)."""
    return f"{name}-{gpu_type.replace('_', '-')}"


def variant_selector_labels(name: str, gpu_type: str) -> dict[str, str]:
    """A fallback Deployment's selector: the model's pods of that type only."""
    return {**selector_labels(name), VARIANT_LABEL: gpu_type}


def model_cache_claim_name(name: str) -> str:
    """Name of the PersistentVolumeClaim lmscale creates for `modelCache.size`."""
    return f"{name}-model-cache"


def owner_reference(lmd_body: Mapping[str, Any]) -> dict[str, Any]:
    """The ownerReference that ties a child to its LanguageModelDeployment.

    `controller: true` makes lmscale the managing controller; `blockOwnerDeletion` makes
    foreground deletion of the parent wait for the children.
    """
    meta = lmd_body["metadata"]
    return {
        "apiVersion": lmd_body["apiVersion"],
        "kind": lmd_body["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
