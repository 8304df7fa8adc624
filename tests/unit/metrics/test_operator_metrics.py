"""The operator's own /metrics: names, labels, and the HTTP server on the settings port."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from lmscale import operator_metrics
from lmscale.settings import ServerSettings


@pytest.fixture
def metrics() -> operator_metrics.OperatorMetrics:
    return operator_metrics.OperatorMetrics(CollectorRegistry())


def value(metrics: operator_metrics.OperatorMetrics, sample: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(sample, labels)


def test_decisions_by_direction_and_reason(metrics: operator_metrics.OperatorMetrics) -> None:
    metrics.record_decision(direction="up", reason="QueueAboveTarget")
    metrics.record_decision(direction="up", reason="QueueAboveTarget")
    metrics.record_decision(direction="none", reason="MetricsMissing")

    name = "lmscale_scaling_decisions_total"
    assert value(metrics, name, direction="up", reason="QueueAboveTarget") == 2
    assert value(metrics, name, direction="none", reason="MetricsMissing") == 1


def test_replicas_per_resource_and_forget(metrics: operator_metrics.OperatorMetrics) -> None:
    metrics.set_replicas("team-a", "chat", desired=4, current=2)

    assert value(metrics, "lmscale_desired_replicas", namespace="team-a", name="chat") == 4
    assert value(metrics, "lmscale_current_replicas", namespace="team-a", name="chat") == 2

    metrics.forget("team-a", "chat")
    metrics.forget("team-a", "chat")  # twice is fine

    assert value(metrics, "lmscale_desired_replicas", namespace="team-a", name="chat") is None


def test_cycle_duration(metrics: operator_metrics.OperatorMetrics) -> None:
    metrics.cycle_duration.observe(0.3)

    assert value(metrics, "lmscale_scaling_cycle_duration_seconds_count") == 1
    assert value(metrics, "lmscale_scaling_cycle_duration_seconds_bucket", le="0.5") == 1


def test_server_serves_metrics_on_the_settings_port(
    metrics: operator_metrics.OperatorMetrics,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    metrics.set_replicas("team-a", "chat", desired=3, current=3)

    server, thread = operator_metrics.start_metrics_server(
        ServerSettings(metrics_port=port, health_port=port + 1), metrics=metrics, addr="127.0.0.1"
    )
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            body = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    assert 'lmscale_desired_replicas{name="chat",namespace="team-a"} 3.0' in body
    assert "# TYPE lmscale_prometheus_query_duration_seconds histogram" in body


def test_default_is_created_once() -> None:
    assert operator_metrics.default() is operator_metrics.default()


def test_clear_model_gauges_leaves_nothing_frozen(
    metrics: operator_metrics.OperatorMetrics,
) -> None:
    """What a paused operator exports once its scaling loop stops: no per-model series."""
    metrics.set_replicas("team-a", "chat", desired=4, current=2)
    metrics.observe_model("team-a", "chat", metrics_available=1.0, max_replicas=8)
    metrics.set_ttft_objective("team-a", "chat", le="0.5")
    metrics.record_decision(direction="up", reason="QueueAboveTarget")

    metrics.clear_model_gauges()

    per_model = [s for family in metrics.registry.collect() for s in family.samples
                 if "name" in s.labels]
    assert per_model == []
    assert value(metrics, "lmscale_scaling_decisions_total", direction="up",
                 reason="QueueAboveTarget") == 1  # counters stay: rates need them


def test_ttft_objective_bucket_follows_the_slo(metrics: operator_metrics.OperatorMetrics) -> None:
    info = "lmscale_slo_ttft_bucket_info"
    metrics.set_ttft_objective("team-a", "chat", le="0.5")
    metrics.set_ttft_objective("team-a", "chat", le="1.0")
    assert value(metrics, info, namespace="team-a", name="chat", le="0.5") is None
    assert value(metrics, info, namespace="team-a", name="chat", le="1.0") == 1
    metrics.forget("team-a", "chat")
    assert value(metrics, info, namespace="team-a", name="chat", le="1.0") is None


def test_gauges_set_again_after_a_forget_or_a_clear(
    metrics: operator_metrics.OperatorMetrics,
) -> None:
    """Unchanged values are not set again; a resource forgotten, or all gauges cleared,
    reports again on its next cycle, and a value gone to None leaves its gauge out."""
    ready = "lmscale_ready_replicas"
    for _ in range(2):
        metrics.set_replicas("team-a", "chat", desired=4, current=2)
        metrics.observe_model("team-a", "chat", ready_replicas=2, observed_waiting_requests=3)
    metrics.clear_model_gauges()
    metrics.set_replicas("team-a", "chat", desired=4, current=2)
    metrics.observe_model("team-a", "chat", ready_replicas=2, observed_waiting_requests=3)
    assert value(metrics, "lmscale_desired_replicas", namespace="team-a", name="chat") == 4
    assert value(metrics, ready, namespace="team-a", name="chat") == 2
    metrics.forget("team-a", "chat")
    metrics.observe_model("team-a", "chat", ready_replicas=2, observed_waiting_requests=None)
    assert value(metrics, ready, namespace="team-a", name="chat") == 2
    assert value(metrics, "lmscale_observed_waiting_requests", namespace="team-a",
                 name="chat") is None
    metrics.set_ttft_objective("team-a", "chat", le="0.5")
    metrics.clear_model_gauges()
    metrics.set_ttft_objective("team-a", "chat", le="0.5")
    assert value(metrics, "lmscale_slo_ttft_bucket_info", namespace="team-a", name="chat",
                 le="0.5") == 1
