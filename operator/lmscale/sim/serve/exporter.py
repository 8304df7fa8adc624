"""The Prometheus text the live simulator serves: each pod's series under its engine's names.

Engine series carry `namespace`, `pod` and `lmscale_dev_deployment` (the pod label
`lmscale.dev/deployment` as a scrape's labelmap would copy it), plus `model_name` where the
engine has it. `DCGM_FI_DEV_GPU_UTIL` comes once per GPU of a pod, labelled as the DCGM
exporter's Kubernetes mapping labels it (`namespace`, `pod`, `container`, with `gpu`,
`UUID`, `device`, `modelName`, `Hostname`) and without the deployment label: the operator
joins it to deployments through the engine's own series.

Always the text format 0.0.4: prometheus_client's OpenMetrics output would rename
`vllm:num_requests_waiting` to `vllm_num_requests_waiting` (docs/adding-a-metric-source.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, exposition
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.metrics_core import UnknownMetricFamily
from prometheus_client.registry import Collector

from lmscale.render.deployment import CONTAINER
from lmscale.sim.serve import engines
from lmscale.sim.serve.fleet import HistogramView, PodView

CONTENT_TYPE = exposition.CONTENT_TYPE_PLAIN_0_0_4
NAMESPACE, POD, DEPLOYMENT, MODEL = "namespace", "pod", "lmscale_dev_deployment", "model_name"
DCGM_LABELS = ("gpu", "UUID", "device", "modelName", "Hostname", "container", NAMESPACE, POD)


def render(pods: Sequence[PodView]) -> bytes:
    """The scrape body for `pods`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PodCollector(pods))
    return exposition.generate_latest(registry)


class PodCollector(Collector):
    """Metric families for a fixed list of pods, engine by engine, then DCGM."""

    def __init__(self, pods: Sequence[PodView]) -> None:
        self._pods = list(pods)

    def collect(self) -> Iterator[Metric]:
        for kind, export in engines.ENGINES.items():
            pods = [p for p in self._pods if p.engine == kind]
            if pods:
                yield from _engine_families(export, pods)
        if self._pods:
            yield _gpu_utilization(self._pods)


def _engine_families(export: engines.EngineExport, pods: list[PodView]) -> Iterator[Metric]:
    names = [NAMESPACE, POD, DEPLOYMENT] + ([MODEL] if export.model_label else [])

    def labels(pod: PodView) -> list[str]:
        values = [pod.namespace, pod.pod, pod.deployment]
        return values + ([pod.model] if export.model_label else [])

    gauges: list[tuple[str | None, str, str]] = [
        (export.waiting, "Requests waiting to be scheduled.", "waiting"),
        (export.running, "Requests in the running batch.", "running"),
        (export.kv_cache_usage, "KV-cache use, 0 to 1.", "kv_cache_usage"),
    ]
    for name, doc, attribute in gauges:
        if name is None:
            continue
        gauge = GaugeMetricFamily(name, doc, labels=names)
        for pod in pods:
            gauge.add_metric(labels(pod), float(getattr(pod, attribute)))
        yield gauge
    completed: CounterMetricFamily | UnknownMetricFamily = (
        CounterMetricFamily(export.completed, "Requests finished.", labels=names)
        if export.completed_counter
        else UnknownMetricFamily(export.completed, "Requests finished.", labels=names)
    )
    for pod in pods:
        completed.add_metric(labels(pod), float(pod.completed))
    yield completed
    if export.prompt_tokens_counter is not None:
        prompt = CounterMetricFamily(
            export.prompt_tokens_counter, "Prompt tokens prefilled.", labels=names
        )
        for pod in pods:
            prompt.add_metric(labels(pod), float(pod.prompt_tokens))
        yield prompt
    histograms: list[tuple[str | None, str, str, list[str]]] = [
        (export.ttft, "Time to first token, seconds.", "ttft", []),
        (export.tpot, "Time per output token (inter-token latency), seconds.", "tpot", []),
        (export.queue, "Time in the router's queue, seconds.", "queue", []),
        (export.prefill, "Prefill batch duration, seconds.", "prefill", ["prefill"]),
        (export.input_length, "Prompt tokens per request.", "input_length", []),
    ]
    for name, doc, attribute, extra in histograms:
        if name is None:
            continue
        extra_names = ["method"] if extra else []
        family = HistogramMetricFamily(name, doc, labels=names + extra_names)
        for pod in pods:
            view: HistogramView = getattr(pod, attribute)
            family.add_metric(labels(pod) + extra, _buckets(view), sum_value=view.sum)
        yield family


def _buckets(view: HistogramView) -> list[tuple[str, float]]:
    return [("+Inf" if b == float("inf") else repr(b), float(c)) for b, c in view.buckets]


def _gpu_utilization(pods: list[PodView]) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(
        engines.DCGM_GPU_UTIL, "GPU utilization (in %).", labels=list(DCGM_LABELS)
    )
    for pod in pods:
        percent = float(round(100 * pod.gpu_utilization))  # DCGM reports whole percents
        for index in range(max(1, pod.gpus)):
            gauge.add_metric(_dcgm_labels(pod, index), percent)
    return gauge


def _dcgm_labels(pod: PodView, index: int) -> list[str]:
    """One GPU of a pod; its UUID is stable for the pod, as a real GPU's is for its node."""
    gpu_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"lmscale-sim/{pod.namespace}/{pod.pod}/{index}")
    return [
        str(index),
        f"GPU-{gpu_uuid}",
        f"nvidia{index}",
        pod.gpu_model,
        pod.node,
        CONTAINER,
        pod.namespace,
        pod.pod,
    ]
