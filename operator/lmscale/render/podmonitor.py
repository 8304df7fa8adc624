"""How model-server pods are scraped: the PodMonitor that kube-prometheus-stack users install,
and the plain Prometheus scrape job that the same PodMonitor becomes.

The Prometheus Operator turns a PodMonitor into a `kubernetes_sd_configs` job with a fixed
chain of relabellings (pkg/prometheus/promcfg.go, generatePodMonitorConfig): drop finished
pods, keep the selected pods and the named port, label `namespace`, `container`, `pod`, copy
each `podTargetLabels` entry, and name `job` and `endpoint`. `scrape_config` builds that chain
from the PodMonitor, so the local cluster's Prometheus discovers pods exactly as that stack
does, and a user of plain Prometheus can paste the job (docs/install.md).
"""

from __future__ import annotations

import re
from typing import Any

from lmscale.render import deployment, meta

NAME = "lmscale-model-servers"
SCRAPE_INTERVAL = "15s"


def _sanitize(label: str) -> str:
    """A Kubernetes label name as Prometheus meta labels spell it (`a.b/c` -> `a_b_c`)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", label)


def podmonitor(namespace: str, *, interval: str = SCRAPE_INTERVAL,
               labels: dict[str, str] | None = None) -> dict[str, Any]:
    """Every lmscale model-server pod, in any namespace, with its deployment's label."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": NAME, "namespace": namespace, "labels": dict(labels or {})},
        "spec": {
            "namespaceSelector": {"any": True},
            "selector": {"matchLabels": {
                "app.kubernetes.io/managed-by": meta.MANAGED_BY,
                "app.kubernetes.io/component": meta.COMPONENT,
            }},
            # The operator's queries join on this label (LMSCALE_DEPLOYMENT_LABEL).
            "podTargetLabels": [meta.DEPLOYMENT_LABEL],
            "podMetricsEndpoints": [
                {"port": deployment.PORT_NAME, "path": "/metrics", "interval": interval},
            ],
        },
    }


def scrape_config(monitor: dict[str, Any], **sd: Any) -> dict[str, Any]:
    """The scrape job the Prometheus Operator generates for `monitor`'s first endpoint;
    `sd` adds to the `kubernetes_sd_configs` entry (api_server, tls_config)."""
    name, namespace = monitor["metadata"]["name"], monitor["metadata"]["namespace"]
    spec = monitor["spec"]
    endpoint = spec["podMetricsEndpoints"][0]
    relabel: list[dict[str, Any]] = [
        {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"],
         "regex": "(Failed|Succeeded)"},
    ]
    for key, value in spec["selector"]["matchLabels"].items():
        relabel.append({"action": "keep", "source_labels": [
            f"__meta_kubernetes_pod_label_{_sanitize(key)}",
            f"__meta_kubernetes_pod_labelpresent_{_sanitize(key)}"],
            "regex": f"({re.escape(value)});true"})
    relabel += [
        {"action": "keep", "source_labels": ["__meta_kubernetes_pod_container_port_name"],
         "regex": endpoint["port"]},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
    ]
    relabel += [
        {"source_labels": [f"__meta_kubernetes_pod_label_{_sanitize(label)}"],
         "target_label": _sanitize(label), "regex": "(.+)", "replacement": "${1}"}
        for label in spec.get("podTargetLabels", [])
    ]
    relabel += [
        {"target_label": "job", "replacement": f"{namespace}/{name}"},
        {"target_label": "endpoint", "replacement": endpoint["port"]},
    ]
    selector = spec["namespaceSelector"]
    namespaces = {} if selector.get("any") else {"namespaces": {"names": selector["matchNames"]}}
    return {
        "job_name": f"podMonitor/{namespace}/{name}/0",
        "honor_labels": False,
        "scrape_interval": endpoint.get("interval", SCRAPE_INTERVAL),
        "metrics_path": endpoint.get("path", "/metrics"),
        "kubernetes_sd_configs": [{"role": "pod", **namespaces, **sd}],
        "relabel_configs": relabel,
    }
