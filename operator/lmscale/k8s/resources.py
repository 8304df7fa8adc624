"""API paths of the kinds lmscale reads and writes (no discovery round-trips needed)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, *, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [root]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
        if subresource:
            parts.append(subresource)
        return "/".join(parts)


DEPLOYMENTS = Resource("apps", "v1", "deployments")
SERVICES = Resource("", "v1", "services")
PODS = Resource("", "v1", "pods")
EVENTS = Resource("", "v1", "events")
PVCS = Resource("", "v1", "persistentvolumeclaims")
INGRESSES = Resource("networking.k8s.io", "v1", "ingresses")
PDBS = Resource("policy", "v1", "poddisruptionbudgets")
LMDS = Resource("lmscale.dev", "v1alpha1", "languagemodeldeployments")
LEASES = Resource("coordination.k8s.io", "v1", "leases")
CONFIGMAPS = Resource("", "v1", "configmaps")
SERVICEACCOUNTS = Resource("", "v1", "serviceaccounts")
ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles")
ROLEBINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings")
HTTPROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes")
INFERENCEPOOLS = Resource("inference.networking.k8s.io", "v1", "inferencepools")
ENDPOINTSLICES = Resource("discovery.k8s.io", "v1", "endpointslices")

BY_KIND: dict[tuple[str, str], Resource] = {
    ("apps/v1", "Deployment"): DEPLOYMENTS,
    ("v1", "Service"): SERVICES,
    ("v1", "Pod"): PODS,
    ("v1", "PersistentVolumeClaim"): PVCS,
    ("networking.k8s.io/v1", "Ingress"): INGRESSES,
    ("policy/v1", "PodDisruptionBudget"): PDBS,
    ("lmscale.dev/v1alpha1", "LanguageModelDeployment"): LMDS,
    ("coordination.k8s.io/v1", "Lease"): LEASES,
    ("v1", "ConfigMap"): CONFIGMAPS,
    ("v1", "Event"): EVENTS,
    ("v1", "ServiceAccount"): SERVICEACCOUNTS,
    ("rbac.authorization.k8s.io/v1", "Role"): ROLES,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ROLEBINDINGS,
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): HTTPROUTES,
    ("inference.networking.k8s.io/v1", "InferencePool"): INFERENCEPOOLS,
    ("discovery.k8s.io/v1", "EndpointSlice"): ENDPOINTSLICES,
}


def of(manifest: Mapping[str, Any]) -> Resource:
    key = (manifest["apiVersion"], manifest["kind"])
    try:
        return BY_KIND[key]
    except KeyError:
        raise ValueError(f"lmscale does not manage {key[1]} ({key[0]})") from None
