"""The metric queries against a real Prometheus scraping fake vLLM/TGI/SGLang/DCGM pods.

Self-contained: a throwaway Prometheus (1 s scrape) and an in-process exporter; no cluster.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from lmscale.metrics import promql
from lmscale.metrics.client import PrometheusClient
from lmscale.metrics.reader import MetricsReader
from lmscale.metrics.results import (
    AvailabilityReason,
    DeploymentMetrics,
    Metric,
    MetricsSnapshot,
    Outcome,
    QueryState,
    Target,
)
from lmscale.operator_metrics import OperatorMetrics
from lmscale.settings import PrometheusSettings
from tests.integration.prometheus_fixtures import (
    FakeExporter,
    Histogram,
    PrometheusServer,
    exporter,
    free_port,
    prometheus,
    start_prometheus,
    stop_prometheus,
    wait_for,
)

__all__ = ["exporter", "prometheus"]  # fixtures, imported for pytest

DEP = "lmscale_dev_deployment"
FLEET = 30  # deployments in one namespace, a third per engine
ENGINES = ("vllm", "tgi", "sglang")
NAMES = {
    "vllm": ("vllm:num_requests_waiting", "vllm:num_requests_running", "vllm:kv_cache_usage_perc"),
    "tgi": ("tgi_queue_size", "tgi_batch_current_size", None),
    "sglang": ("sglang:num_queue_reqs", "sglang:num_running_reqs", "sglang:token_usage"),
}
BOUNDS = (0.1, 0.25, 0.5, 1.0, 2.5)
# p95 falls in (0.5, 1.0]: 0.5 + (0.95 - 0.9) / (0.96 - 0.9) * 0.5
TTFT = (0.5, 0.8, 0.9, 0.96, 1.0)
TTFT_P95 = 0.5 + 0.05 / 0.06 * 0.5
# TGI: p95 of the queue wait, 0.25 + 0.05 / 0.1 * 0.25, plus p95 of prefill, 0.1 + 0.15 / 0.2 * 0.15
TGI_QUEUE = (0.5, 0.9, 1.0, 1.0, 1.0)
TGI_PREFILL = (0.8, 1.0, 1.0, 1.0, 1.0)
TGI_P95 = 0.375 + 0.2125
TOKEN_TARGETS = (Target("tokens", "vp", "vllm"), Target("tokens", "sp", "sglang"),
                 Target("tokens", "tp", "tgi"))


class CountingClient:
    """The real client, counting the queries a cycle sends."""

    def __init__(self, client: PrometheusClient) -> None:
        self.client = client
        self.sent: list[str] = []

    def query(self, text: str, *, now: float) -> Any:
        self.sent.append(text)
        return self.client.query(text, now=now)


@dataclasses.dataclass
class Harness:
    prometheus: PrometheusServer
    exporter: FakeExporter
    created: float = dataclasses.field(default_factory=time.time)  # after every series is set

    def reader(
        self,
        *,
        max_age: float = 60.0,
        url: str | None = None,
        timeout: float = 5.0,
        rate_window: float = 60.0,
        dcgm_labels: tuple[str, str] | None = None,
    ) -> tuple[MetricsReader, CountingClient, OperatorMetrics]:
        settings = PrometheusSettings(url=url or self.prometheus.url, timeout_seconds=timeout)
        client = CountingClient(PrometheusClient(settings))
        metrics = OperatorMetrics(CollectorRegistry())
        ctx = promql.QueryContext(max_age_seconds=max_age, rate_window_seconds=rate_window,
                                  dcgm_namespace_label=dcgm_labels[0] if dcgm_labels else None,
                                  dcgm_pod_label=dcgm_labels[1] if dcgm_labels else None)
        return MetricsReader(client, ctx, metrics=metrics), client, metrics

    def read(self, targets: list[Target], **kwargs: Any) -> MetricsSnapshot:
        reader, _, _ = self.reader(**kwargs)
        return reader.read(targets, now=time.time())


def engine_pod(
    exporter: FakeExporter,
    ns: str,
    dep: str,
    pod: str,
    engine: str,
    *,
    waiting: float,
    running: float,
    kv: float | None = None,
) -> None:
    waiting_name, running_name, kv_name = NAMES[engine]
    labels = pod_labels(ns, pod, dep)
    exporter.set(waiting_name, waiting, labels)
    exporter.set(running_name, running, labels)
    if kv_name is not None and kv is not None:
        exporter.set(kv_name, kv, labels)


def gpu(exporter: FakeExporter, ns: str, pod: str, index: int, percent: float) -> None:
    """A DCGM series as the exporter's Kubernetes mapping labels it: no deployment label."""
    labels = {"gpu": str(index), "UUID": f"GPU-{pod}-{index}", "namespace": ns, "pod": pod}
    exporter.set("DCGM_FI_DEV_GPU_UTIL", percent, labels)


def pod_labels(ns: str, pod: str, dep: str) -> dict[str, str]:
    """Labels of an engine series once the scrape config maps the pod's labels."""
    return {"namespace": ns, "pod": pod, DEP: dep}


def fleet_targets() -> list[Target]:
    return [Target("fleet", f"m{i}", ENGINES[i % 3]) for i in range(FLEET)]


@pytest.fixture(scope="module")
def harness(prometheus: PrometheusServer, exporter: FakeExporter) -> Iterator[Harness]:
    """Every static scenario set up once; the fixture waits until Prometheus shows them all."""
    for i, target in enumerate(fleet_targets()):
        for p in range(2):
            pod = f"m{i}-{p}"
            engine_pod(
                exporter,
                "fleet",
                target.name,
                pod,
                target.engine,
                waiting=i + p,
                running=10 + p,
                kv=0.2 + 0.2 * p,
            )
            gpu(exporter, "fleet", pod, 0, 40.0)
            gpu(exporter, "fleet", pod, 1, 80.0)
    # A vLLM fleet mid-upgrade: one pod exports the KV-cache gauge under its older name.
    engine_pod(exporter, "mixed", "upgrade", "upgrade-new", "vllm", waiting=1, running=1, kv=0.5)
    engine_pod(exporter, "mixed", "upgrade", "upgrade-old", "vllm", waiting=1, running=1)
    exporter.set("vllm:gpu_cache_usage_perc", 0.7, pod_labels("mixed", "upgrade-old", "upgrade"))
    engine_pod(exporter, "nan", "broken", "broken-0", "vllm", waiting=float("nan"), running=3)
    # Samples that carry their own time, two minutes old: Prometheus still returns them
    # (five-minute lookback); the reader must not.
    old = time.time() - 120
    for name in NAMES["vllm"][:2]:
        exporter.set(name, 9, pod_labels("stale", "frozen-0", "frozen"), timestamp=old)
    for engine, name in (("vllm", "lat"), ("sglang", "slat")):
        for p, rate in ((0, 20.0), (1, 60.0)):
            engine_pod(exporter, "ttft", name, f"{name}-{p}", engine, waiting=0, running=1)
            exporter.histogram(
                f"{engine}:time_to_first_token_seconds",
                Histogram(BOUNDS, TTFT, rate=rate),
                pod_labels("ttft", f"{name}-{p}", name),
            )
    # DCGM as NVIDIA's GPU Operator ServiceMonitor delivers it (honorLabels off): the model
    # pod's namespace and name moved to exported_*, namespace/pod naming the exporter.
    engine_pod(exporter, "gpuop", "exported", "exported-0", "vllm", waiting=0, running=1)
    for index, percent in ((0, 30.0), (1, 50.0)):
        exporter.set("DCGM_FI_DEV_GPU_UTIL", percent, {
            "gpu": str(index), "UUID": f"GPU-x-{index}", "namespace": "gpu-operator",
            "pod": "nvidia-dcgm-exporter-abcde", "exported_namespace": "gpuop",
            "exported_pod": "exported-0"})
    engine_pod(exporter, "ttft", "tlat", "tlat-0", "tgi", waiting=0, running=1)
    tgi_labels = pod_labels("ttft", "tlat-0", "tlat")
    exporter.histogram("tgi_request_queue_duration", Histogram(BOUNDS, TGI_QUEUE), tgi_labels)
    exporter.histogram(
        "tgi_batch_inference_duration",
        Histogram(BOUNDS, TGI_PREFILL),
        {**tgi_labels, "method": "prefill"},
    )
    # Decode steps must not count towards time to first token.
    exporter.histogram(
        "tgi_batch_inference_duration",
        Histogram(BOUNDS, (0, 0, 0, 0, 0)),
        {**tgi_labels, "method": "decode"},
    )
    # Prompt tokens: vLLM and SGLang count them, TGI sums a histogram of prompt lengths.
    for pod, rate in (("vp-0", 500.0), ("vp-1", 1500.0)):
        engine_pod(exporter, "tokens", "vp", pod, "vllm", waiting=0, running=1)
        exporter.counter("vllm:prompt_tokens", rate, pod_labels("tokens", pod, "vp"))
    engine_pod(exporter, "tokens", "sp", "sp-0", "sglang", waiting=0, running=1)
    exporter.counter("sglang:prompt_tokens", 700.0, pod_labels("tokens", "sp-0", "sp"))
    engine_pod(exporter, "tokens", "tp", "tp-0", "tgi", waiting=0, running=1)
    exporter.histogram(
        "tgi_request_input_length",
        Histogram(BOUNDS, (0.2, 0.4, 0.6, 0.8, 1.0), rate=2.0, mean=900.0),
        pod_labels("tokens", "tp-0", "tp"),
    )
    h = Harness(prometheus, exporter)
    wait_for(lambda: _all_visible(h), timeout=30)
    yield h


def _all_visible(h: Harness) -> bool:
    """Every static scenario scraped, histograms included (rate needs two scrapes)."""
    snapshot = h.read(
        [
            *fleet_targets(),
            Target("mixed", "upgrade", "vllm"),
            Target("ttft", "lat", "vllm"),
            Target("ttft", "tlat", "tgi"),
            *TOKEN_TARGETS,
        ]
    )
    fleet = [snapshot.get(t.namespace, t.name) for t in fleet_targets()]
    return (
        all(m.running is not None and m.gpu_utilization is not None for m in fleet)
        and snapshot.get("mixed", "upgrade").kv_cache_usage == pytest.approx(0.6)
        and snapshot.get("ttft", "lat").ttft_p95_seconds is not None
        and snapshot.get("ttft", "tlat").ttft_p95_seconds is not None
        and all(
            snapshot.get(t.namespace, t.name).prompt_tokens_per_second is not None
            for t in TOKEN_TARGETS
        )
    )


def test_one_query_per_metric_whatever_the_number_of_deployments(harness: Harness) -> None:
    reader, client, _ = harness.reader()
    many = reader.read(fleet_targets(), now=time.time())
    sent_for_many = len(client.sent)
    one = reader.read(fleet_targets()[:3], now=time.time())

    assert sent_for_many == len(Metric) == many.query_count
    assert len(client.sent) - sent_for_many == len(Metric) == one.query_count
    assert client.sent[: len(Metric)] == client.sent[len(Metric) :]  # same text for 3 or 30


def test_several_pods_aggregate_per_deployment(harness: Harness) -> None:
    snapshot = harness.read(fleet_targets())

    for i, target in enumerate(fleet_targets()):
        got = snapshot.get(target.namespace, target.name)
        assert got.waiting == 2 * i + 1, target
        assert got.running == 21, target
        assert got.reporting_replicas == 2, target
        assert got.gpu_utilization == pytest.approx(0.6), target  # mean of 40 % and 80 %
        if target.engine == "tgi":
            assert got.kv_cache_usage is None
            assert got.missing[Metric.KV_CACHE_USAGE] is Outcome.UNSUPPORTED
        else:
            assert got.kv_cache_usage == pytest.approx(0.3), target  # mean of 0.2 and 0.4
    assert all(s.state is QueryState.OK for s in snapshot.queries.values())


def test_dcgm_under_the_gpu_operator_servicemonitor_uses_its_own_labels(
    harness: Harness,
) -> None:
    target = [Target("gpuop", "exported", "vllm")]
    wait_for(lambda: harness.read(target).get("gpuop", "exported").running is not None)
    # With the engine's label names the exporter's own pod matches nothing.
    assert harness.read(target).get("gpuop", "exported").gpu_utilization is None
    labelled = harness.read(target, dcgm_labels=("exported_namespace", "exported_pod"))
    assert labelled.get("gpuop", "exported").gpu_utilization == pytest.approx(0.4)


def test_vllm_kv_cache_falls_back_to_the_older_name_per_pod(harness: Harness) -> None:
    got = harness.read([Target("mixed", "upgrade", "vllm")]).get("mixed", "upgrade")

    assert got.kv_cache_usage == pytest.approx(0.6)  # mean of 0.5 (new name) and 0.7 (old)


@pytest.mark.parametrize(
    ("name", "engine", "expected", "bucket"),
    [
        pytest.param("lat", "vllm", TTFT_P95, (0.5, 1.0), id="vllm-histogram"),
        pytest.param("slat", "sglang", TTFT_P95, (0.5, 1.0), id="sglang-histogram"),
        pytest.param("tlat", "tgi", TGI_P95, (0.35, 0.75), id="tgi-queue-plus-prefill"),
    ],
)
def test_ttft_p95_from_histogram_within_bucket_resolution(
    harness: Harness, name: str, engine: str, expected: float, bucket: tuple[float, float]
) -> None:
    got = harness.read([Target("ttft", name, engine)]).get("ttft", name)

    assert got.ttft_p95_seconds is not None
    assert bucket[0] < got.ttft_p95_seconds <= bucket[1]
    assert got.ttft_p95_seconds == pytest.approx(expected, rel=0.02)


@pytest.mark.parametrize(
    ("name", "engine", "expected"),
    [
        pytest.param("vp", "vllm", 2000.0, id="vllm-counter-summed-over-pods"),
        pytest.param("sp", "sglang", 700.0, id="sglang-counter"),
        pytest.param("tp", "tgi", 1800.0, id="tgi-prompt-length-histogram-sum"),
    ],
)
def test_prompt_tokens_per_second_from_counters(
    harness: Harness, name: str, engine: str, expected: float
) -> None:
    # rate() divides by its whole window, so it reads low until a series is older than the
    # window: a short window (1 s scrapes) keeps the test from waiting a minute.
    # A loaded machine can delay scrapes past a 4 s window: read again until one has two.
    wait_for(lambda: time.time() - harness.created >= 6.0, timeout=10)
    got = wait_for(lambda: _tokens_per_second(harness, Target("tokens", name, engine)))

    assert got == pytest.approx(expected, rel=0.05)


def _tokens_per_second(harness: Harness, target: Target) -> float | None:
    read = harness.read([target], rate_window=4.0)
    return read.get(target.namespace, target.name).prompt_tokens_per_second


def test_no_series_is_missing_never_zero(harness: Harness) -> None:
    reader, _, metrics = harness.reader()
    snapshot = reader.read([Target("fleet", "ghost", "vllm")], now=time.time())

    got = snapshot.get("fleet", "ghost")
    assert [got.value(m) for m in Metric] == [None] * len(Metric)
    assert set(got.missing.values()) == {Outcome.EMPTY}
    availability = snapshot.availability("fleet", "ghost")
    assert (availability.available, availability.reason) == (False, AvailabilityReason.NOT_FOUND)
    assert _counted(metrics, "waiting", "empty") == 1
    # Series of the fleet's vLLM deployments (only engines in use are queried), not asked for.
    assert _counted(metrics, "waiting", "unmatched") >= FLEET // 3


def test_nan_is_missing_and_counted(harness: Harness) -> None:
    reader, _, metrics = harness.reader()
    snapshot = reader.read([Target("nan", "broken", "vllm")], now=time.time())

    got = snapshot.get("nan", "broken")
    assert (got.waiting, got.running) == (None, 3)
    assert got.missing[Metric.WAITING] is Outcome.NAN
    assert snapshot.availability("nan", "broken").reason is AvailabilityReason.INVALID
    assert _counted(metrics, "waiting", "nan") == 1


@pytest.mark.parametrize(
    ("max_age", "expected"),
    [
        pytest.param(60.0, None, id="two-minutes-old-is-stale"),
        pytest.param(300.0, 9.0, id="within-a-long-max-age"),
    ],
)
def test_old_samples_are_missing(harness: Harness, max_age: float, expected: float | None) -> None:
    got = harness.read([Target("stale", "frozen", "vllm")], max_age=max_age).get("stale", "frozen")

    assert got.waiting == expected


def test_tiny_max_age_makes_everything_missing(harness: Harness) -> None:
    got = harness.read(fleet_targets()[:1], max_age=0.001).get("fleet", "m0")

    assert (got.waiting, got.running) == (None, None)


def test_series_that_stops_being_exported_becomes_missing(harness: Harness) -> None:
    labels = pod_labels("vanish", "gone-0", "gone")
    harness.exporter.set("vllm:num_requests_waiting", 5, labels)
    target = [Target("vanish", "gone", "vllm")]
    wait_for(lambda: harness.read(target).get("vanish", "gone").waiting == 5)

    harness.exporter.remove("vllm:num_requests_waiting", labels)

    def gone() -> DeploymentMetrics | None:
        got = harness.read(target).get("vanish", "gone")
        return got if got.waiting is None else None

    assert wait_for(gone).missing[Metric.WAITING] is Outcome.EMPTY


def test_deployment_reads_only_its_own_engine(harness: Harness) -> None:
    # m0 runs vLLM; declared as SGLang it must not borrow vLLM's series.
    got = harness.read([Target("fleet", "m0", "sglang")]).get("fleet", "m0")

    assert got.waiting is None and got.missing[Metric.WAITING] is Outcome.EMPTY


def test_prometheus_down_is_an_error_not_zeros(
    exporter: FakeExporter, tmp_path_factory: pytest.TempPathFactory
) -> None:
    server = start_prometheus(tmp_path_factory.mktemp("short-lived"), exporter.port)
    h = Harness(server, exporter)
    target = [Target("fleet", "m1", "tgi")]
    try:
        wait_for(lambda: h.read(target).get("fleet", "m1").waiting is not None)
    finally:
        stop_prometheus(server)
    reader, client, metrics = h.reader(timeout=2)

    snapshot = reader.read(target, now=time.time())

    got = snapshot.get("fleet", "m1")
    assert [got.value(m) for m in Metric] == [None] * len(Metric)
    first, *rest = snapshot.queries.values()
    assert (first.state, first.error_kind) == (QueryState.FAILED, "connection")
    assert {s.state for s in rest} <= {QueryState.SKIPPED, QueryState.NOT_NEEDED}
    assert len(client.sent) == 1  # no point asking a server that is down four more times
    availability = snapshot.availability("fleet", "m1")
    assert (availability.available, availability.reason) == (
        False,
        AvailabilityReason.QUERY_FAILED,
    )
    assert "cannot reach" in availability.message
    errors = metrics.registry.get_sample_value(
        "lmscale_prometheus_query_errors_total", {"metric": "waiting", "kind": "connection"}
    )
    assert errors == 1


def test_nothing_listening_is_an_error(harness: Harness) -> None:
    snapshot = harness.read(fleet_targets()[:1], url=f"http://127.0.0.1:{free_port()}")

    assert snapshot.query_count == 1
    assert snapshot.get("fleet", "m0").missing[Metric.WAITING] is Outcome.ERROR


def _counted(metrics: OperatorMetrics, metric: str, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "lmscale_prometheus_query_results_total", {"metric": metric, "outcome": outcome}
    )
    return value or 0.0
