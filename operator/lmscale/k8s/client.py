"""A thin synchronous client: server-side apply, get, list and delete by raw path.

The generated kubernetes client is used only for its configuration and transport; raw
paths keep server-side apply (content type application/apply-patch+yaml) uniform across
kinds, including our own custom resource.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from lmscale.k8s import resources

# Field managers: one for everything rendered from the spec, one for replicas (the scaler),
# so Argo CD, `kubectl scale` users and the two halves of the operator never fight.
TEMPLATE_MANAGER = "lmscale"
SCALER_MANAGER = "lmscale-scaler"

NotFound = 404
Conflict = 409

__all__ = ["ApiException", "Kube", "make_api_client"]


def make_api_client(kubeconfig: str | None = None, *, pool_size: int = 16
                    ) -> k8s_client.ApiClient:
    """In-cluster credentials when running in a pod, else the kubeconfig.

    The connection pool is sized for the scaler's parallel status writes.
    """
    configuration = k8s_client.Configuration()
    configuration.connection_pool_maxsize = pool_size
    if kubeconfig is None:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
            return k8s_client.ApiClient(configuration)
        except k8s_config.ConfigException:
            pass
    k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    return k8s_client.ApiClient(configuration)


class Kube:
    """The operations lmscale needs, one method each."""

    def __init__(self, api: k8s_client.ApiClient) -> None:
        self.api = api

    def _call(self, method: str, path: str, *, body: Any = None,
              query: list[tuple[str, str]] | None = None,
              content_type: str = "application/json") -> Any:
        _, url, headers, payload, _ = self.api.param_serialize(
            method, path, query_params=query or [], body=body,
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(method, url, header_params=headers, body=payload)
        data = response.read()
        if not 200 <= response.status < 300:
            raise ApiException(http_resp=response, body=data.decode(errors="replace"))
        return json.loads(data) if data else {}

    def apply(self, manifest: Mapping[str, Any], *, field_manager: str,
              subresource: str | None = None) -> dict[str, Any]:
        """Server-side apply with force: lmscale owns what it renders."""
        resource = resources.of(manifest)
        meta = manifest["metadata"]
        path = resource.path(namespace=meta.get("namespace"), name=meta["name"],
                             subresource=subresource)
        return dict(self._call(
            "PATCH", path, body=dict(manifest),
            query=[("fieldManager", field_manager), ("force", "true")],
            content_type="application/apply-patch+yaml",
        ))

    def get(self, resource: resources.Resource, *, namespace: str | None, name: str
            ) -> dict[str, Any] | None:
        try:
            return dict(self._call("GET", resource.path(namespace=namespace, name=name)))
        except ApiException as error:
            if error.status == NotFound:
                return None
            raise

    def list(self, resource: resources.Resource, *, namespace: str | None = None,
             label_selector: str | None = None) -> list[dict[str, Any]]:
        query = [("labelSelector", label_selector)] if label_selector else []
        body = self._call("GET", resource.path(namespace=namespace), query=query)
        return list(body.get("items", []))

    def merge_patch(self, resource: resources.Resource, *, namespace: str | None, name: str,
                    patch: Mapping[str, Any], subresource: str | None = None) -> dict[str, Any]:
        path = resource.path(namespace=namespace, name=name, subresource=subresource)
        return dict(self._call("PATCH", path, body=dict(patch),
                               content_type="application/merge-patch+json"))

    def delete(self, resource: resources.Resource, *, namespace: str | None, name: str) -> None:
        """Delete in the background (children go with it); gone already is fine."""
        try:
            self._call("DELETE", resource.path(namespace=namespace, name=name),
                       body={"propagationPolicy": "Background"})
        except ApiException as error:
            if error.status != NotFound:
                raise


def namespace_gone(error: ApiException) -> bool:
    """The namespace is being deleted (or is gone): nothing to reconcile there any more."""
    body = str(getattr(error, "body", "") or "")
    return error.status == NotFound or (error.status == 403 and "NamespaceTerminating" in body)
