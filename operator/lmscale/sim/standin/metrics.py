"""The /metrics page of the stand-in: one replica's series under its engine's real names.

Names the operator queries come from its own metric sources through
`lmscale.sim.serve.engines` (as `lmscale sim serve` exports them); the few the operator does not
read (generation tokens, TPOT, end-to-end latency) use the engine's names too. Labels are the
engine's own only (vLLM: `model_name`, `engine`; SGLang: `model_name`; TGI: none):
namespace, pod and the deployment label come from the scrape's relabelling, as for a real pod.

Counting points follow the engines: vLLM counts prompt tokens when the prefill runs, SGLang
when the request finishes; TGI's `tgi_request_queue_duration` is observed when a request ends.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, exposition
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.metrics_core import UnknownMetricFamily
from prometheus_client.registry import Collector

from lmscale.api import EngineKind
from lmscale.sim.serve import engines as exports
from lmscale.sim.serve.fleet import Histogram
from lmscale.sim.standin.replica import Counters, Gauges, Replica

CONTENT_TYPE = exposition.CONTENT_TYPE_PLAIN_0_0_4


def buckets(kind: EngineKind) -> dict[str, tuple[float, ...]]:
    """Histogram bounds per engine, as the Replica needs them at start."""
    export = exports.export_for(kind.value)
    return {
        "ttft_buckets": export.ttft_buckets,
        "duration_buckets": exports.TGI_DURATION_BUCKETS,
        "length_buckets": exports.INPUT_LENGTH_BUCKETS,
    }


def render(kind: EngineKind, replica: Replica, served_name: str) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(kind, replica.gauges(), replica.counters, served_name))
    return exposition.generate_latest(registry)


class _Collector(Collector):
    def __init__(self, kind: EngineKind, gauges: Gauges, counters: Counters, name: str) -> None:
        self.kind, self.gauges, self.counters, self.name = kind, gauges, counters, name

    def collect(self) -> Iterator[Metric]:
        if self.kind is EngineKind.VLLM:
            yield from self._vllm()
        elif self.kind is EngineKind.TGI:
            yield from self._tgi()
        else:
            yield from self._sglang()

    def _labels(self) -> tuple[list[str], list[str]]:
        if self.kind is EngineKind.VLLM:
            return ["model_name", "engine"], [self.name, "0"]
        if self.kind is EngineKind.SGLANG:
            return ["model_name"], [self.name]
        return [], []

    def _gauge(self, name: str, doc: str, value: float) -> GaugeMetricFamily:
        names, values = self._labels()
        family = GaugeMetricFamily(name, doc, labels=names)
        family.add_metric(values, value)
        return family

    def _counter(self, name: str, doc: str, value: float) -> CounterMetricFamily:
        names, values = self._labels()
        family = CounterMetricFamily(name, doc, labels=names)
        family.add_metric(values, value)
        return family

    def _histogram(
        self, name: str, doc: str, hist: Histogram, extra: dict[str, str] | None = None
    ) -> HistogramMetricFamily:
        names, values = self._labels()
        extra = extra or {}
        family = HistogramMetricFamily(name, doc, labels=names + list(extra))
        view = hist.view()
        points = [("+Inf" if b == float("inf") else repr(b), float(c)) for b, c in view.buckets]
        family.add_metric(values + list(extra.values()), points, sum_value=view.sum)
        return family

    def _vllm(self) -> Iterator[Metric]:
        e, g, c = exports.ENGINES["vllm"], self.gauges, self.counters
        yield self._gauge(e.running, "Number of requests in model execution batches.", g.running)
        yield self._gauge(e.waiting, "Number of requests waiting to be processed.", g.waiting)
        assert e.kv_cache_usage is not None and e.prompt_tokens_counter is not None
        yield self._gauge(e.kv_cache_usage, "KV-cache usage. 1 means 100 percent usage.",
                          g.kv_cache_usage)
        yield self._counter(e.prompt_tokens_counter, "Number of prefill tokens processed.",
                            c.prompt_tokens)
        yield self._counter("vllm:generation_tokens", "Number of generation tokens processed.",
                            c.generation_tokens)
        yield self._counter("vllm:num_preemptions", "Cumulative number of preemption from the "
                            "engine.", 0)
        names, values = self._labels()
        success = CounterMetricFamily(e.completed, "Count of successfully processed requests.",
                                      labels=[*names, "finished_reason"])
        success.add_metric([*values, "length"], c.finished)
        yield success
        assert e.ttft is not None
        yield self._histogram(e.ttft, "Histogram of time to first token in seconds.", c.ttft)
        # vLLM 0.11 exports the inter-token latency under both names, same samples.
        yield self._histogram("vllm:time_per_output_token_seconds",
                              "Histogram of time per output token in seconds.", c.tpot)
        yield self._histogram("vllm:inter_token_latency_seconds",
                              "Histogram of inter-token latency in seconds.", c.tpot)
        yield self._histogram("vllm:e2e_request_latency_seconds",
                              "Histogram of e2e request latency in seconds.", c.e2e)

    def _tgi(self) -> Iterator[Metric]:
        e, g, c = exports.ENGINES["tgi"], self.gauges, self.counters
        yield self._gauge(e.waiting, "Current queue size", g.waiting)
        yield self._gauge(e.running, "Current batch size", g.running)
        success = UnknownMetricFamily(e.completed, "Number of successful requests")
        success.add_metric([], c.finished)
        yield success
        assert e.queue is not None and e.prefill is not None and e.input_length is not None
        yield self._histogram(e.queue, "Request queue duration", c.queue)
        yield self._histogram(e.prefill, "Batch inference duration", c.prefill,
                              {"method": "prefill"})
        yield self._histogram(e.input_length, "Request input length", c.input_length)
        yield self._histogram("tgi_request_mean_time_per_token_duration",
                              "Mean time per token per request", c.tpot)

    def _sglang(self) -> Iterator[Metric]:
        e, g, c = exports.ENGINES["sglang"], self.gauges, self.counters
        yield self._gauge(e.running, "The number of running requests.", g.running)
        yield self._gauge(e.waiting, "The number of requests in the waiting queue.", g.waiting)
        assert e.kv_cache_usage is not None and e.prompt_tokens_counter is not None
        yield self._gauge(e.kv_cache_usage, "The token usage.", g.kv_cache_usage)
        yield self._counter(e.prompt_tokens_counter, "Number of prefill tokens processed.",
                            c.prompt_tokens_at_end)
        yield self._counter("sglang:generation_tokens", "Number of generation tokens processed.",
                            c.generation_tokens)
        yield self._counter(e.completed, "Number of requests processed.", c.finished)
        assert e.ttft is not None
        yield self._histogram(e.ttft, "Histogram of time to first token in seconds.", c.ttft)
        yield self._histogram("sglang:e2e_request_latency_seconds",
                              "Histogram of End-to-end request latency in seconds", c.e2e)
        yield self._histogram("sglang:inter_token_latency_seconds",
                              "Histogram of inter-token latency in seconds.", c.tpot)
