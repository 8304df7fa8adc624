"""A thin synchronous client: server-side apply, get, list and delete by raw path.

urllib3 with the credentials of `lmscale.k8s.credentials`, no generated client: raw paths
keep server-side apply (content type application/apply-patch+yaml) uniform across kinds,
including our own custom resource, and the operator does not pay for models it never uses.
"""

from __future__ import annotations

import builtins
import json
import os
import ssl
import tempfile
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any

import urllib3

from lmscale.k8s import credentials, resources

# Field managers: one for everything rendered from the spec, one for replicas (the scaler),
# so Argo CD, `kubectl scale` users and the two halves of the operator never fight.
TEMPLATE_MANAGER = "lmscale"
SCALER_MANAGER = "lmscale-scaler"

NotFound = 404
Conflict = 409
# (connect, read) seconds for every call: a request to an apiserver that stopped answering
# fails instead of holding a thread (and the operator's exit) forever.
TIMEOUT = (5.0, 30.0)
PARTIAL_METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"

__all__ = ["ApiException", "Kube", "Transport", "make_api_client"]


class ApiException(Exception):  # noqa: N818 - the name every Kubernetes Python client uses
    """An answer outside 2xx: `status`, `reason` and the apiserver's Status `body`."""

    def __init__(self, status: int, reason: str, body: str = "") -> None:
        super().__init__(f"HTTP {status} {reason}: {body[:500]}")
        self.status, self.reason, self.body = status, reason, body


class Transport:
    """Connections to one apiserver as one identity, pooled for the scaler's parallel writes."""

    def __init__(self, creds: credentials.Credentials, *, pool_size: int = 16) -> None:
        self.credentials = creds
        self._pool = urllib3.PoolManager(maxsize=pool_size, block=False,
                                         ssl_context=_ssl_context(creds))

    def request(self, method: str, path: str, *, query: list[tuple[str, str]],
                body: bytes | None, headers: dict[str, str],
                timeout: float | tuple[float, float]) -> tuple[int, str, bytes]:
        url = self.credentials.server + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        token = self.credentials.bearer_token()
        if token:
            headers = {**headers, "Authorization": f"Bearer {token}"}
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        response = self._pool.request(method, url, body=body, headers=headers,
                                      timeout=urllib3.Timeout(connect=connect, read=read),
                                      retries=urllib3.Retry(total=2, read=0, status=0,
                                                            redirect=0),
                                      preload_content=True)
        return response.status, response.reason or "", response.data

    def close(self) -> None:
        self._pool.clear()


def make_api_client(kubeconfig: str | os.PathLike[str] | None = None, *,
                    pool_size: int = 16) -> Transport:
    """In-cluster credentials when running in a pod, else the kubeconfig
    (raises `credentials.CredentialsError` saying what is missing)."""
    return Transport(credentials.load(kubeconfig), pool_size=pool_size)


def _ssl_context(creds: credentials.Credentials) -> ssl.SSLContext:
    context = ssl.create_default_context(
        cadata=creds.ca_pem.decode() if creds.ca_pem else None)
    if creds.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if creds.cert_pem and creds.key_pem:
        # ssl loads a certificate chain only from files: a private directory, gone at once.
        with tempfile.TemporaryDirectory(prefix="lmscale-") as tmp:
            cert, key = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
            for file, data in ((cert, creds.cert_pem), (key, creds.key_pem)):
                with open(os.open(file, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as out:
                    out.write(data)
            context.load_cert_chain(cert, key)
    return context


class Kube:
    """The operations lmscale needs, one method each."""

    def __init__(self, api: Transport) -> None:
        self.api = api

    def _call(self, method: str, path: str, *, body: Any = None,
              query: list[tuple[str, str]] | None = None,
              content_type: str = "application/json",
              timeout: float | tuple[float, float] = TIMEOUT,
              accept: str = "application/json") -> Any:
        payload = None if body is None else json.dumps(body).encode()
        status, reason, data = self.api.request(
            method, path, query=query or [], body=payload, timeout=timeout,
            headers={"Content-Type": content_type, "Accept": accept})
        if not 200 <= status < 300:
            raise ApiException(status, reason, data.decode(errors="replace"))
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

    def get(self, resource: resources.Resource, *, namespace: str | None, name: str,
            timeout: float | tuple[float, float] = TIMEOUT) -> dict[str, Any] | None:
        try:
            return dict(self._call("GET", resource.path(namespace=namespace, name=name),
                                   timeout=timeout))
        except ApiException as error:
            if error.status == NotFound:
                return None
            raise

    def list(self, resource: resources.Resource, *, namespace: str | None = None,
             label_selector: str | None = None) -> list[dict[str, Any]]:
        query = [("labelSelector", label_selector)] if label_selector else []
        body = self._call("GET", resource.path(namespace=namespace), query=query)
        return list(body.get("items", []))

    def count(self, resource: resources.Resource, *, namespace: str | None = None,
              label_selector: str | None = None, page: int = 500) -> int:
        """How many objects match, read as metadata only, a page at a time."""
        return sum(len(items) for items in self._metadata_pages(
            resource, namespace=namespace, label_selector=label_selector, page=page))

    def list_metadata(self, resource: resources.Resource, *, namespace: str | None = None,
                      label_selector: str | None = None, page: int = 500
                      ) -> builtins.list[dict[str, Any]]:
        """The matching objects' metadata only (PartialObjectMetadataList: no spec or
        status on the wire), a page at a time; each item is `{"metadata": {...}}`."""
        return [item for items in self._metadata_pages(
            resource, namespace=namespace, label_selector=label_selector, page=page)
            for item in items]

    def _metadata_pages(self, resource: resources.Resource, *, namespace: str | None,
                        label_selector: str | None, page: int
                        ) -> Iterator[builtins.list[Any]]:
        token = ""
        while True:
            query = [("limit", str(page))]
            query += [("labelSelector", label_selector)] if label_selector else []
            query += [("continue", token)] if token else []
            body = self._call("GET", resource.path(namespace=namespace), query=query,
                              accept=PARTIAL_METADATA_LIST)
            yield list(body.get("items") or [])
            token = (body.get("metadata") or {}).get("continue") or ""
            if not token:
                return

    def create(self, manifest: Mapping[str, Any], *,
               timeout: float | tuple[float, float] = TIMEOUT) -> dict[str, Any]:
        """POST: fails with 409 Conflict when the object exists (the point, for a Lease)."""
        resource = resources.of(manifest)
        path = resource.path(namespace=manifest["metadata"].get("namespace"))
        return dict(self._call("POST", path, body=dict(manifest), timeout=timeout))

    def replace(self, manifest: Mapping[str, Any], *,
                timeout: float | tuple[float, float] = TIMEOUT) -> dict[str, Any]:
        """PUT with the manifest's resourceVersion: 409 Conflict when someone wrote first."""
        resource = resources.of(manifest)
        meta = manifest["metadata"]
        path = resource.path(namespace=meta.get("namespace"), name=meta["name"])
        return dict(self._call("PUT", path, body=dict(manifest), timeout=timeout))

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
