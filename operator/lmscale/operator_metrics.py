"""The operator's own Prometheus metrics, served on `/metrics` (LMSCALE_METRICS_PORT).

They answer "what did the autoscaler do, and could it see?": decisions by direction and
reason, how each metric query went (latency, errors by kind, every result outcome), how long
a scaling cycle takes, and desired versus current replicas per resource.
"""

from __future__ import annotations

import contextlib
import threading
from wsgiref.simple_server import WSGIServer

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from lmscale.settings import ServerSettings

PREFIX = "lmscale"
_QUERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_CYCLE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class OperatorMetrics:
    """All operator metrics on one registry; tests build their own on a fresh registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else prometheus_client.REGISTRY
        r = self.registry
        self.decisions = Counter(
            f"{PREFIX}_scaling_decisions_total",
            "Scaling decisions, by direction (up, down, none) and policy reason.",
            ["direction", "reason"],
            registry=r,
        )
        self.query_duration = Histogram(
            f"{PREFIX}_prometheus_query_duration_seconds",
            "Latency of one metric query to Prometheus (one per metric per cycle).",
            ["metric"],
            buckets=_QUERY_BUCKETS,
            registry=r,
        )
        self.query_errors = Counter(
            f"{PREFIX}_prometheus_query_errors_total",
            "Failed metric queries by metric and kind: connection, timeout, http, auth, response.",
            ["metric", "kind"],
            registry=r,
        )
        self.query_results = Counter(
            f"{PREFIX}_prometheus_query_results_total",
            "Per-deployment outcome of each metric query (ok, empty, nan, stale, ...).",
            ["metric", "outcome"],
            registry=r,
        )
        self.cycle_duration = Histogram(
            f"{PREFIX}_scaling_cycle_duration_seconds",
            "Duration of one scaling cycle over all resources.",
            buckets=_CYCLE_BUCKETS,
            registry=r,
        )
        self.calibrations = Counter(
            f"{PREFIX}_calibrations_total",
            "Calibrations of the per-replica target by source: computed on the engine model, "
            "or persisted (read back from a resource's status after a restart or a new leader).",
            ["source"],
            registry=r,
        )
        self.calibration_cpu_seconds = Histogram(
            f"{PREFIX}_calibration_cpu_seconds",
            "CPU time of one calibration computed on the engine model (a policy target or a "
            "candidate of a gpusPerReplica: auto choice).",
            buckets=(0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0),
            registry=r,
        )
        self.desired_replicas = Gauge(
            f"{PREFIX}_desired_replicas",
            "Replicas the autoscaler wants, per LanguageModelDeployment.",
            ["namespace", "name"],
            registry=r,
        )
        self.current_replicas = Gauge(
            f"{PREFIX}_current_replicas",
            "Replicas on the Deployment now, per LanguageModelDeployment.",
            ["namespace", "name"],
            registry=r,
        )

        per_model = {
            "ready_replicas": "Replicas ready to serve, per LanguageModelDeployment.",
            "max_replicas": "scaling.maxReplicas, per LanguageModelDeployment.",
            "observed_waiting_requests": "Queued requests the autoscaler last read.",
            "observed_ttft_p95_seconds": "Time-to-first-token p95 the autoscaler last read.",
            "slo_ttft_p95_seconds": "The TTFT p95 objective (slo.ttftP95Ms), in seconds.",
            "observed_gpu_utilization_ratio": "Mean GPU utilisation (DCGM) last read, 0-1.",
            "metrics_available": "1 when the autoscaler has fresh load metrics, else 0.",
            "scaling_headroom_ratio": "The learned rise of arrivals within one reaction time "
            "that the fleet keeps capacity for (1: none yet).",
            "fleet_cost_per_hour": "Catalog price of an hour of the placed replicas of every "
            "GPU type (accelerator.type and its fallbacks).",
        }
        self.model_gauges = {
            key: Gauge(f"{PREFIX}_{key}", text, ["namespace", "name"], registry=r)
            for key, text in per_model.items()
        }
        self.ttft_objective_bucket = Gauge(
            f"{PREFIX}_slo_ttft_bucket_info",
            "1 for the engine's TTFT histogram bucket (le) the error budget counts against: "
            "the largest bound at or under slo.ttftP95Ms.",
            ["namespace", "name", "le"],
            registry=r,
        )
        self._objective_le: dict[tuple[str, str], str] = {}
        # What each model's gauges were last set to: an idle fleet sets the same values every
        # cycle, and the label lookups cost more than its decisions.
        self._last: dict[tuple[str, str], dict[str, float | None]] = {}

    def _changed(self, namespace: str, name: str, key: str, value: float | None) -> bool:
        last = self._last.setdefault((namespace, name), {})
        if key in last and last[key] == value:
            return False
        last[key] = value
        return True

    def observe_model(self, namespace: str, name: str, **values: float | None) -> None:
        """Per-model gauges for the dashboard and alerts; None leaves a gauge out."""
        for key, value in values.items():
            if not self._changed(namespace, name, key, value):
                continue
            gauge = self.model_gauges[key]
            if value is None:
                with contextlib.suppress(KeyError):
                    gauge.remove(namespace, name)
            else:
                gauge.labels(namespace=namespace, name=name).set(value)

    def record_calibration(self, source: str) -> None:
        self.calibrations.labels(source=source).inc()

    def record_calibration_cpu(self, seconds: float) -> None:
        self.calibration_cpu_seconds.observe(seconds)

    def record_decision(self, *, direction: str, reason: str) -> None:
        self.decisions.labels(direction=direction, reason=reason).inc()

    def set_replicas(self, namespace: str, name: str, *, desired: int, current: int) -> None:
        if self._changed(namespace, name, "desired_replicas", desired):
            self.desired_replicas.labels(namespace=namespace, name=name).set(desired)
        if self._changed(namespace, name, "current_replicas", current):
            self.current_replicas.labels(namespace=namespace, name=name).set(current)

    def set_ttft_objective(self, namespace: str, name: str, *, le: str | None) -> None:
        """Publish which TTFT bucket the error budget uses for this model (None: none)."""
        old = self._objective_le.get((namespace, name))
        if old == le:
            return
        if old is not None:
            del self._objective_le[(namespace, name)]
            with contextlib.suppress(KeyError):
                self.ttft_objective_bucket.remove(namespace, name, old)
        if le is not None:
            self._objective_le[(namespace, name)] = le
            self.ttft_objective_bucket.labels(namespace=namespace, name=name, le=le).set(1)

    def forget(self, namespace: str, name: str) -> None:
        """Drop a deleted resource's gauges so they do not report forever."""
        for gauge in (self.desired_replicas, self.current_replicas, *self.model_gauges.values()):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, name)
        self._last.pop((namespace, name), None)
        self.set_ttft_objective(namespace, name, le=None)

    def clear_model_gauges(self) -> None:
        """Drop every per-model gauge. Call it where the scaling loop stops
        (leadership lost, shutdown): a paused operator must not keep exporting
        frozen values next to the active one's, or alerts read both."""
        for gauge in (self.desired_replicas, self.current_replicas,
                      *self.model_gauges.values(), self.ttft_objective_bucket):
            gauge.clear()
        self._objective_le.clear()
        self._last.clear()


_default: OperatorMetrics | None = None
_default_lock = threading.Lock()


def default() -> OperatorMetrics:
    """The process-wide metrics on prometheus_client's default registry (created once)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = OperatorMetrics()
        return _default


def start_metrics_server(
    settings: ServerSettings, *, metrics: OperatorMetrics | None = None, addr: str = "0.0.0.0"
) -> tuple[WSGIServer, threading.Thread]:
    """Serve `/metrics` on the settings' metrics port in a daemon thread."""
    registry = (metrics or default()).registry
    return prometheus_client.start_http_server(settings.metrics_port, addr=addr, registry=registry)
