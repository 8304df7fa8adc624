"""Where clients reach a model, for `status.url` (pure).

As KServe shows it: the Ingress host when there is one (https when it terminates TLS),
else the Service's cluster DNS name and port, which works from any pod in the cluster.
"""

from __future__ import annotations

from lmscale.api import LanguageModelDeployment

# The cluster domain kubelet's default configuration and every managed Kubernetes use.
CLUSTER_DOMAIN = "cluster.local"


def url(lmd: LanguageModelDeployment) -> str:
    """The model's address: `http(s)://host[/path]`, else `http://name.ns.svc.domain:port`."""
    ingress = lmd.spec.ingress
    # A wildcard host names many addresses, none of them this model's: use the Service.
    if ingress.enabled and ingress.host is not None and not ingress.host.startswith("*."):
        scheme = "https" if ingress.tls_secret_name else "http"
        path = ingress.paths[0].rstrip("/")
        return f"{scheme}://{ingress.host}{path}"
    port = lmd.spec.service.port
    return f"http://{lmd.name}.{lmd.namespace}.svc.{CLUSTER_DOMAIN}:{port}"
