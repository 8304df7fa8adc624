"""One scaling cycle's reads: build the queries, send each once, parse, count every outcome.

Usage from the scaler::

    reader = MetricsReader.from_settings(OperatorSettings.from_env())
    snapshot = reader.read(targets, now=time.time())
    snapshot.get(namespace, name).waiting          # float, or None when missing
    snapshot.availability(namespace, name)         # -> MetricsAvailable status/reason/message
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable
from types import MappingProxyType
from typing import Any, Protocol

from lmscale import operator_metrics
from lmscale.metrics import parse, promql, queries, registry
from lmscale.metrics.client import PrometheusClient, QueryError
from lmscale.metrics.results import Metric, MetricsSnapshot, QueryState, QueryStatus, Target
from lmscale.settings import OperatorSettings

logger = logging.getLogger(__name__)
UNREACHABLE_KINDS = ("connection", "timeout")


class QueryClient(Protocol):
    def query(self, promql: str, *, now: float) -> Any: ...


class MetricsReader:
    """Reads every metric of every deployment with one query per metric."""

    def __init__(
        self,
        client: QueryClient,
        ctx: promql.QueryContext,
        *,
        metrics: operator_metrics.OperatorMetrics | None = None,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._client = client
        self._ctx = ctx
        self._metrics = metrics or operator_metrics.default()
        self._timer = timer
        self._labels = parse.Labels(ctx.namespace_label, ctx.deployment_label, promql.ENGINE_LABEL)

    @classmethod
    def from_settings(
        cls,
        settings: OperatorSettings,
        *,
        metrics: operator_metrics.OperatorMetrics | None = None,
        rate_window_seconds: float = 60.0,
    ) -> MetricsReader:
        ctx = promql.QueryContext.from_settings(
            settings.metrics,
            namespaces=settings.kopf.watch_namespaces,
            rate_window_seconds=rate_window_seconds,
        )
        return cls(PrometheusClient(settings.prometheus), ctx, metrics=metrics)

    def read(self, targets: Iterable[Target], *, now: float) -> MetricsSnapshot:
        """All metrics for `targets`, evaluated at `now` (Unix seconds, the scaler's clock).

        Samples are judged fresh or stale against `now`; the number of queries depends on
        the engines in use, never on the number of targets.
        """
        targets = list(targets)
        engines = {t.engine for t in targets if t.engine in registry.SOURCES}
        built = queries.build_queries(engines, self._ctx)
        statuses: dict[Metric, QueryStatus] = {}
        parsed: dict[Metric, parse.ParsedVector | None] = {}
        unreachable: QueryStatus | None = None  # once Prometheus is down, stop asking
        for metric, text in built.items():
            parsed[metric] = None
            if text is None:
                statuses[metric] = QueryStatus(metric, QueryState.NOT_NEEDED)
            elif unreachable is not None:
                statuses[metric] = QueryStatus(
                    metric, QueryState.SKIPPED, text, message=unreachable.message
                )
            else:
                statuses[metric], parsed[metric] = self._run(metric, text, now=now)
                if statuses[metric].error_kind in UNREACHABLE_KINDS:
                    unreachable = statuses[metric]
        deployments, counts = parse.assemble(targets, parsed, statuses, supported=self._supported)
        results = self._metrics.query_results
        for metric, counter in counts.items():
            for outcome, n in counter.items():
                results.labels(metric=metric.value, outcome=outcome.value).inc(n)
        return MetricsSnapshot(
            now=now,
            deployments=MappingProxyType(deployments),
            queries=MappingProxyType(statuses),
        )

    def close(self) -> None:
        """Release the HTTP connections (the client's, when it has any)."""
        close = getattr(self._client, "close", None)
        if callable(close):
            close()

    def _run(
        self, metric: Metric, text: str, *, now: float
    ) -> tuple[QueryStatus, parse.ParsedVector | None]:
        started = self._timer()
        try:
            result = self._client.query(text, now=now)
            vector = parse.parse_vector(
                result, labels=self._labels, now=now, max_age=self._ctx.max_age_seconds
            )
        except QueryError as error:
            return self._failed(metric, text, error, started), None
        except parse.MalformedSampleError as error:
            return self._failed(metric, text, QueryError("response", str(error)), started), None
        elapsed = self._observe(metric, started)
        status = QueryStatus(
            metric, QueryState.OK, text, duration_seconds=elapsed, series=vector.series
        )
        return status, vector

    def _failed(self, metric: Metric, text: str, error: QueryError, started: float) -> QueryStatus:
        elapsed = self._observe(metric, started)
        self._metrics.query_errors.labels(metric=metric.value, kind=error.kind).inc()
        logger.warning("Prometheus query for %s failed (%s): %s", metric, error.kind, error)
        return QueryStatus(
            metric,
            QueryState.FAILED,
            text,
            message=str(error),
            error_kind=error.kind,
            duration_seconds=elapsed,
        )

    def _observe(self, metric: Metric, started: float) -> float:
        elapsed = self._timer() - started
        self._metrics.query_duration.labels(metric=metric.value).observe(elapsed)
        return elapsed

    def _supported(self, engine: str, metric: Metric) -> bool:
        return _supported(engine, metric, self._ctx)


@functools.lru_cache(maxsize=256)
def _supported(engine: str, metric: Metric, ctx: promql.QueryContext) -> bool:
    """Whether `engine` exports `metric`; unknown engines export nothing."""
    if engine not in registry.SOURCES:
        return False
    return queries.supported(engine, metric, ctx)
