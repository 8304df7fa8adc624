"""One PromQL query per metric for every deployment of every engine in use (pure).

The query text depends on the engines in use and the settings, never on how many
deployments there are, so a cycle costs the same number of queries for 1 or 500 resources.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from lmscale.metrics import dcgm, promql, registry
from lmscale.metrics.results import Metric
from lmscale.metrics.source import EngineSource


def engine_expression(source: EngineSource, metric: Metric, ctx: promql.QueryContext) -> str | None:
    """One engine's per-deployment expression for `metric`, or None when it lacks the metric."""
    if metric is Metric.GPU_UTILIZATION:
        return dcgm.gpu_utilization(source, ctx)
    return source.expression(metric, ctx)


def supported(kind: str, metric: Metric, ctx: promql.QueryContext) -> bool:
    return engine_expression(registry.source_for(kind), metric, ctx) is not None


def build_queries(engines: Iterable[str], ctx: promql.QueryContext) -> Mapping[Metric, str | None]:
    """The query for each metric, or None when no engine in use exports it.

    Each engine's answer is tagged with its kind, so a deployment only reads series from its
    own engine, and engines never hide each other's series in the `or`.
    """
    sources = [registry.source_for(kind) for kind in sorted(set(engines))]
    queries: dict[Metric, str | None] = {}
    for metric in Metric:
        parts = []
        for source in sources:
            expr = engine_expression(source, metric, ctx)
            if expr is not None:
                parts.append(promql.tag_engine(expr, source.kind))
        queries[metric] = promql.union(parts) if parts else None
    return queries
