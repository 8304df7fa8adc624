"""The Ingress in front of the Service, with the annotations its controller needs.

LLM responses stream for minutes and prompts can be large, so besides the load-balancing
mode the ingress-nginx annotations lift the 60 s proxy timeouts, the 1 MiB body limit and
response buffering (which would hold back a token stream). Spec annotations override all.
"""

from __future__ import annotations

from typing import Any

from lmscale.api import LanguageModelDeployment, LoadBalancing
from lmscale.render import deployment, meta

NGINX = "nginx"
HAPROXY = "haproxy"
STREAM_TIMEOUT_SECONDS = 3600

_NGINX_BALANCE = {LoadBalancing.ROUND_ROBIN: "round_robin", LoadBalancing.EWMA: "ewma"}
_HAPROXY_BALANCE = {
    LoadBalancing.ROUND_ROBIN: "roundrobin",
    LoadBalancing.LEAST_REQUEST: "leastconn",
}
_DEFAULT_BALANCE = {NGINX: LoadBalancing.EWMA, HAPROXY: LoadBalancing.LEAST_REQUEST}


def controller_annotations(class_name: str | None, mode: LoadBalancing | None) -> dict[str, str]:
    """What the ingress class needs: load balancing (default per class) and streaming."""
    if class_name == NGINX:
        chosen = mode or _DEFAULT_BALANCE[NGINX]
        prefix = "nginx.ingress.kubernetes.io/"
        return {
            prefix + "load-balance": _NGINX_BALANCE[chosen],
            prefix + "proxy-read-timeout": str(STREAM_TIMEOUT_SECONDS),
            prefix + "proxy-send-timeout": str(STREAM_TIMEOUT_SECONDS),
            prefix + "proxy-buffering": "off",
            prefix + "proxy-body-size": "64m",
        }
    if class_name == HAPROXY:
        algorithm = _HAPROXY_BALANCE[mode or _DEFAULT_BALANCE[HAPROXY]]
        # HAProxy Technologies' controller and the community haproxy-ingress read different keys.
        return {
            "haproxy.org/load-balance": algorithm,
            "haproxy.org/timeout-server": f"{STREAM_TIMEOUT_SECONDS}s",
            "haproxy-ingress.github.io/balance-algorithm": algorithm,
            "haproxy-ingress.github.io/timeout-server": f"{STREAM_TIMEOUT_SECONDS}s",
        }
    return {}


def render_ingress(lmd: LanguageModelDeployment) -> dict[str, Any] | None:
    """The Ingress, or None when `spec.ingress.enabled` is false (the caller deletes it)."""
    spec = lmd.spec.ingress
    if not spec.enabled or spec.host is None:
        return None
    backend = {"service": {"name": lmd.name, "port": {"name": deployment.PORT_NAME}}}
    paths = [{"path": p, "pathType": "Prefix", "backend": backend} for p in spec.paths]
    body: dict[str, Any] = {"rules": [{"host": spec.host, "http": {"paths": paths}}]}
    if spec.class_name:
        body["ingressClassName"] = spec.class_name
    if spec.tls_secret_name:
        body["tls"] = [{"hosts": [spec.host], "secretName": spec.tls_secret_name}]
    metadata = meta.metadata(lmd)
    annotations = {
        **controller_annotations(spec.class_name, spec.load_balancing),
        **spec.annotations,
    }
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata,
        "spec": body,
    }
