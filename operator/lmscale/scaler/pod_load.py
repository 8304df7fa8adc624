"""In-flight requests per pod, read only when a scale-down must pick pods to remove."""

from __future__ import annotations

import math
import re

from lmscale.metrics.client import PrometheusClient, QueryError
from lmscale.metrics.registry import SOURCES
from lmscale.settings import MetricsSettings


def _load_series_names() -> list[str]:
    names: list[str] = []
    for source in SOURCES.values():
        names += list(getattr(source, "waiting", ())) + list(getattr(source, "running", ()))
    return names


def query(namespace: str, settings: MetricsSettings) -> str:
    pattern = "|".join(re.escape(n) for n in _load_series_names())
    return (f'sum by ({settings.pod_label}) ({{__name__=~"{pattern}", '
            f'{settings.namespace_label}="{namespace}"}})')


def pod_load(client: PrometheusClient, namespace: str, settings: MetricsSettings, *,
             now: float) -> dict[str, float]:
    """pod -> running + waiting requests; empty when Prometheus cannot say."""
    try:
        result = client.query(query(namespace, settings), now=now)
    except QueryError:
        return {}
    load = {}
    for sample in result or []:
        value = float(sample["value"][1])
        if math.isfinite(value):
            load[sample["metric"].get(settings.pod_label, "")] = value
    return load
