"""MetricsAvailable of a model at zero behind the activator, through one scaling cycle.

At zero no engine exports series; while the activator reports the model its queue is the
load, so the condition must not say metrics are missing (every idle model would alert on
lmscale_metrics_available == 0). With the activator silent too, the engines' availability
stands. The world is tests/unit/argocd/operator_statuses.py's, with the activator's series
answered by a stub Prometheus.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from tests.unit.argocd.operator_statuses import (
    NAME,
    NAMESPACE,
    NOW,
    RecordingKube,
    deployment_body,
    lmd_body,
    pod_body,
)

from lmscale.controller.desired import desired_state
from lmscale.controller.pods import summarize
from lmscale.k8s import reconcile
from lmscale.metrics import activator
from lmscale.metrics.results import MetricsSnapshot
from lmscale.operator_metrics import OperatorMetrics
from lmscale.scaler.cycle import Scaler
from lmscale.settings import OperatorSettings


class NoEngineSeries:
    """The engines' queries answer nothing: no replica exports series."""

    def read(self, targets: Any, *, now: float) -> MetricsSnapshot:
        return MetricsSnapshot(now=now, deployments={}, queries={})


class ActivatorSeries:
    """Prometheus as the scaler's activator queries see it."""

    def __init__(self, held: float | None, arrivals: float | None) -> None:
        self.held, self.arrivals = held, arrivals

    def query(self, promql: str, *, now: float) -> list[dict[str, Any]]:
        value = self.held if activator.WAITING in promql else self.arrivals
        if value is None:
            return []
        return [{"metric": {"model": f"{NAMESPACE}/{NAME}"}, "value": [now, str(value)]}]


def _metrics_available(*, held: float | None, arrivals: float | None = None,
                       replicas: int = 0, pods: list[dict[str, Any]] | None = None
                       ) -> dict[str, Any]:
    body = lmd_body(scaling={"minReplicas": 1, "maxReplicas": 8, "targetInFlightPerReplica": 8,
                             "scaleToZero": {"enabled": True, "idleSeconds": 60}})
    kube = RecordingKube(body)
    reconcile.write_spec_status(kube, body, desired_state(body), now=NOW)  # type: ignore[arg-type]
    scaler = Scaler(kube=kube, reader=NoEngineSeries(),  # type: ignore[arg-type]
                    settings=OperatorSettings(), post_event=lambda *_: None,
                    metrics=OperatorMetrics(registry=CollectorRegistry()),
                    prometheus=ActivatorSeries(held, arrivals))  # type: ignore[arg-type]
    key = (NAMESPACE, NAME)
    scaler.run_cycle(lmds={key: copy.deepcopy(body)}, deployments={key: deployment_body(replicas)},
                     pods={key: [summarize(p) for p in pods or []]}, now=NOW)
    return next(c for c in body["status"]["conditions"] if c["type"] == "MetricsAvailable")


@pytest.fixture(autouse=True)
def activator_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMSCALE_ACTIVATOR_SERVICE", "lmscale-system/lmscale-activator")


def test_at_zero_a_reporting_activator_means_metrics_are_available() -> None:
    found = _metrics_available(held=0.0, arrivals=0.0)
    assert (found["status"], found["reason"]) == ("True", "ActivatorReporting")
    assert "scaled to zero" in found["message"]
    assert "0 requests held" in found["message"]


def test_waking_from_zero_the_held_requests_are_the_load() -> None:
    found = _metrics_available(held=3.0, arrivals=0.5)
    assert (found["status"], found["reason"]) == ("True", "ActivatorReporting")
    assert "3 requests held, 0.50 requests/s arriving" in found["message"]


def test_at_zero_with_the_activator_silent_too_metrics_are_missing() -> None:
    found = _metrics_available(held=None)
    assert (found["status"], found["reason"]) == ("False", "MetricsNotFound")


def test_with_a_ready_replica_the_engines_series_decide() -> None:
    found = _metrics_available(held=0.0, replicas=1, pods=[pod_body(0)])
    assert (found["status"], found["reason"]) == ("False", "MetricsNotFound")
