"""The interface every engine's metric source implements (KEDA-style: small and explicit).

A source turns an engine's own metric names into PromQL that yields one series per
deployment, labelled with the namespace and deployment labels only. It never talks to
Prometheus: the reader composes the sources of all engines in use into one query per metric.
See docs/adding-a-metric-source.md.
"""

from __future__ import annotations

import abc
from typing import ClassVar

from lmscale.metrics import promql
from lmscale.metrics.results import Metric


class EngineSource(abc.ABC):
    """Per-deployment PromQL for one engine kind (`spec.engine.kind`)."""

    kind: ClassVar[str]

    @abc.abstractmethod
    def expression(self, metric: Metric, ctx: promql.QueryContext) -> str | None:
        """PromQL for `metric` (not GPU utilisation), or None when the engine lacks it."""

    @abc.abstractmethod
    def pod_series(self) -> str:
        """A metric every serving pod of this engine exports: maps pods to deployments."""


class GaugeEngineSource(EngineSource):
    """An engine whose load metrics are gauges and whose TTFT and TPOT are histograms.

    Subclasses only name their metrics; tuples list a current name first and older names
    after it, so a fleet halfway through an engine upgrade still reads.
    """

    waiting: ClassVar[tuple[str, ...]]
    running: ClassVar[tuple[str, ...]]
    kv_cache_usage: ClassVar[tuple[str, ...]] = ()
    ttft_histogram: ClassVar[str | None] = None
    # Inter-token latency histograms, current name first (vLLM renamed its in v0.11).
    tpot_histograms: ClassVar[tuple[str, ...]] = ()
    prompt_tokens: ClassVar[tuple[str, ...]] = ()  # counters of prompt tokens prefilled
    completions: ClassVar[tuple[str, ...]] = ()  # counters of requests finished

    def expression(self, metric: Metric, ctx: promql.QueryContext) -> str | None:
        if metric is Metric.WAITING:
            return promql.sum_by_deployment(self.waiting, ctx)
        if metric is Metric.RUNNING:
            return promql.sum_by_deployment(self.running, ctx)
        if metric is Metric.KV_CACHE_USAGE:
            return (
                promql.avg_by_deployment(self.kv_cache_usage, ctx) if self.kv_cache_usage else None
            )
        if metric is Metric.TTFT_P95:
            return self.ttft_p95(ctx)
        if metric is Metric.TPOT_P95:
            if not self.tpot_histograms:
                return None
            return promql.first_quantile(self.tpot_histograms, ctx)
        if metric is Metric.PROMPT_TOKENS_RATE:
            return (
                promql.rate_sum_by_deployment(self.prompt_tokens, ctx)
                if self.prompt_tokens else None
            )
        if metric is Metric.COMPLETIONS_RATE:
            return (
                promql.rate_sum_by_deployment(self.completions, ctx) if self.completions else None
            )
        if metric is Metric.REPORTING_REPLICAS:
            return promql.count_by_deployment(self.running[:1], ctx)
        return None

    def ttft_p95(self, ctx: promql.QueryContext) -> str | None:
        if self.ttft_histogram is None:
            return None
        return promql.histogram_quantile(self.ttft_histogram, ctx)

    def pod_series(self) -> str:
        return self.running[0]
