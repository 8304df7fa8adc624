"""One scaling cycle of a fleet with fallbacks: the scaler's writes per GPU type.

The world is the same as in tests/unit/argocd/operator_statuses.py (the operator's own
status writers over recorded objects); here the scaler's `replicas` applies are the point.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from tests.unit.argocd.operator_statuses import (
    BUSY,
    NAME,
    NAMESPACE,
    NOW,
    UNSCHEDULABLE,
    FixedReader,
    RecordingKube,
    deployment_body,
    lmd_body,
)

from lmscale.controller.desired import Resolved, desired_state
from lmscale.controller.pods import CAPACITY_ANNOTATION, summarize
from lmscale.k8s import reconcile
from lmscale.metrics.results import DeploymentMetrics
from lmscale.operator_metrics import OperatorMetrics
from lmscale.render import VARIANT_LABEL
from lmscale.scaler import policy_spec
from lmscale.scaler.cycle import Scaler
from lmscale.settings import OperatorSettings

A100 = "nvidia-a100-80gb"
FALLBACK = f"{NAME}-{A100}"


class ScaleRecordingKube(RecordingKube):
    """Keeps status like RecordingKube, and each Deployment's applied replicas."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.replicas: dict[str, int] = {}
        self.pod_notes: dict[str, dict[str, str]] = {}

    def merge_patch(self, resource: Any, *, namespace: str, name: str,
                    patch: Mapping[str, Any], **_: Any) -> None:
        if resource.plural == "pods" and CAPACITY_ANNOTATION in patch["metadata"]["annotations"]:
            self.pod_notes.setdefault(name, {}).update(patch["metadata"]["annotations"])

    def apply(self, manifest: Mapping[str, Any], *, field_manager: str,
              subresource: str | None = None) -> dict[str, Any]:
        if subresource is None and manifest.get("kind") == "Deployment":
            self.replicas[manifest["metadata"]["name"]] = manifest["spec"]["replicas"]
        return super().apply(manifest, field_manager=field_manager, subresource=subresource)


def _lmd() -> dict[str, Any]:
    return lmd_body(accelerator={"type": "nvidia-h100-80gb", "gpusPerReplica": 1,
                                 "fallbacks": [{"type": A100, "gpusPerReplica": 1,
                                                "maxReplicas": 32}],
                                 "fallbackAfterSeconds": 60})


def _pod(index: int, *, variant: str | None = None, ready: bool = True,
         unschedulable_for: float | None = None,
         annotations: dict[str, str] | None = None) -> dict[str, Any]:
    created = (NOW - timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    conditions: list[dict[str, Any]] = [{"type": "Ready", "status": str(ready),
                                         "lastTransitionTime": created}]
    if unschedulable_for is not None:
        since = (NOW - timedelta(seconds=unschedulable_for)).isoformat().replace("+00:00", "Z")
        conditions.append({"type": "PodScheduled", "status": "False",
                           "reason": "Unschedulable", "message": UNSCHEDULABLE,
                           "lastTransitionTime": since})
    labels = {"lmscale.dev/deployment": NAME, **({VARIANT_LABEL: variant} if variant else {})}
    return {"metadata": {"name": f"{NAME}-{variant or 'h100'}-{index:05d}",
                         "namespace": NAMESPACE, "creationTimestamp": created,
                         "labels": labels, "annotations": dict(annotations or {})},
            "status": {"conditions": conditions}}


def _fallback_record(replicas: int) -> dict[str, Any]:
    record = deployment_body(replicas)
    record["metadata"] = {"name": FALLBACK, "namespace": NAMESPACE, "generation": 1,
                          "labels": {VARIANT_LABEL: A100}}
    return record


@pytest.fixture(scope="module")
def calibrated() -> None:
    """Both types' calibrations (the fleet's weights), computed once on the worker thread."""
    outcome = desired_state(_lmd())
    assert isinstance(outcome, Resolved)
    plans = [outcome.plan, *outcome.fallback_plans]
    deadline = time.monotonic() + 300
    while not policy_spec.weights_ready(outcome.lmd, plans):
        assert time.monotonic() < deadline, "calibrations did not finish"
        time.sleep(0.2)


def _cycle(*, primary: int, fallback: int, pods: list[dict[str, Any]],
           metrics: DeploymentMetrics) -> tuple[ScaleRecordingKube, dict[str, Any]]:
    body = _lmd()
    kube = ScaleRecordingKube(body)
    reconcile.write_spec_status(kube, body, desired_state(body), now=NOW)  # type: ignore[arg-type]
    scaler = Scaler(kube=kube, reader=FixedReader(metrics, {}),  # type: ignore[arg-type]
                    settings=OperatorSettings(), post_event=lambda *_: None,
                    metrics=OperatorMetrics(registry=CollectorRegistry()))
    key = (NAMESPACE, NAME)
    scaler.run_cycle(lmds={key: copy.deepcopy(body)},
                     deployments={key: deployment_body(primary)},
                     variant_deployments={key: {A100: _fallback_record(fallback)}},
                     pods={key: [summarize(p) for p in pods]}, now=NOW)
    return kube, body["status"]


def _weight() -> float:
    outcome = desired_state(_lmd())
    assert isinstance(outcome, Resolved)
    return policy_spec.capacity_weights(outcome.lmd, outcome.plan, outcome.fallback_plans)[1]


@pytest.mark.usefixtures("calibrated")
def test_a100_replicas_count_by_their_calibrated_weight() -> None:
    weight = _weight()
    assert 0.0 < weight < 1.0  # an A100 replica carries less than an H100 replica


@pytest.mark.usefixtures("calibrated")
def test_starved_primary_brings_up_fallback_replicas() -> None:
    pods = [_pod(0), _pod(1), _pod(2, ready=False, unschedulable_for=90),
            _pod(3, ready=False, unschedulable_for=90)]
    kube, status = _cycle(primary=4, fallback=0, pods=pods, metrics=BUSY)
    assert kube.replicas[NAME] == 3  # the 2 placed + one probe pod still asking
    assert kube.replicas[FALLBACK] >= 1
    fleet = status["fleet"]
    primary, fallback = fleet["variants"]
    assert primary["starved"] is True and fallback["type"] == A100
    assert fleet["types"] == f"nvidia-h100-80gb=3,{A100}={kube.replicas[FALLBACK]}"
    assert fleet["costPerHour"] > 0
    assert status["desiredReplicas"] == 3 + kube.replicas[FALLBACK]


@pytest.mark.usefixtures("calibrated")
def test_unschedulable_for_less_than_fallback_after_waits() -> None:
    pods = [_pod(0), _pod(1), _pod(2, ready=False, unschedulable_for=20),
            _pod(3, ready=False, unschedulable_for=20)]
    kube, status = _cycle(primary=4, fallback=0, pods=pods, metrics=BUSY)
    assert kube.replicas.get(FALLBACK, 0) == 0
    assert status["fleet"]["variants"][0]["starved"] is False
    # Its pending pods stay: deleting them would restart the wait every cycle.
    assert kube.replicas.get(NAME, 4) >= 4


@pytest.mark.usefixtures("calibrated")
def test_moving_back_keeps_ready_fallbacks_until_replacements_are_ready() -> None:
    # The H100 pool freed: all 4 H100 pods placed, only 2 ready yet; 4 A100s serve.
    pods = ([_pod(i) for i in range(2)] + [_pod(i, ready=False) for i in range(2, 4)]
            + [_pod(i, variant=A100) for i in range(4)])
    steady = DeploymentMetrics(waiting=0.0, running=24.0, kv_cache_usage=0.3,
                               ttft_p95_seconds=0.2, gpu_utilization=0.6,
                               prompt_tokens_per_second=2000.0, reporting_replicas=6.0)
    kube, status = _cycle(primary=4, fallback=4, pods=pods, metrics=steady)
    # No A100 is removed while H100s that replace it are still loading.
    assert kube.replicas.get(FALLBACK, 4) == 4
    assert kube.replicas.get(NAME, 4) >= 4


@pytest.mark.usefixtures("calibrated")
def test_fallback_drains_first_when_the_primary_carries_the_load() -> None:
    pods = [_pod(i) for i in range(4)] + [_pod(i, variant=A100) for i in range(4)]
    low = DeploymentMetrics(waiting=0.0, running=16.0, kv_cache_usage=0.2,
                            ttft_p95_seconds=0.2, gpu_utilization=0.5,
                            prompt_tokens_per_second=1000.0, reporting_replicas=8.0)
    kube, status = _cycle(primary=4, fallback=4, pods=pods, metrics=low)
    assert kube.replicas.get(NAME, 4) == 4
    assert kube.replicas[FALLBACK] == 0
    assert status["fleet"]["types"] == "nvidia-h100-80gb=4"


@pytest.mark.usefixtures("calibrated")
def test_a_steady_mixed_fleet_holds_its_counts() -> None:
    """Units are read down, and a refused probe pod is no capacity: holding at the current
    size adds no replica of any type."""
    weight = _weight()
    a100s = 8
    pods = ([_pod(0), _pod(1), _pod(2, ready=False, unschedulable_for=300)]
            + [_pod(i, variant=A100) for i in range(a100s)])
    units = int(2 + a100s * weight)
    on_target = DeploymentMetrics(waiting=0.0, running=8.0 * units, kv_cache_usage=0.3,
                                  ttft_p95_seconds=0.2, gpu_utilization=0.6,
                                  prompt_tokens_per_second=2000.0,
                                  reporting_replicas=float(2 + a100s))
    kube, status = _cycle(primary=3, fallback=a100s, pods=pods, metrics=on_target)
    assert kube.replicas.get(NAME, 3) == 3
    assert kube.replicas.get(FALLBACK, a100s) <= a100s
    assert status["fleet"]["variants"][0]["starved"] is True


@pytest.mark.usefixtures("calibrated")
def test_cheapest_moves_the_units_to_the_lowest_price_per_unit() -> None:
    """A100 first in the spec, but an H100 replica carries far more per dollar: cheapest
    puts the load there (ordered would keep it on the A100s)."""
    h100_fallback = f"{NAME}-nvidia-h100-80gb"
    body = lmd_body(accelerator={"type": A100, "gpusPerReplica": 1, "strategy": "cheapest",
                                 "fallbacks": [{"type": "nvidia-h100-80gb",
                                                "gpusPerReplica": 1}]},
                    scaling={"minReplicas": 1, "maxReplicas": 32,
                             "targetInFlightPerReplica": 2})
    outcome = desired_state(body)
    assert isinstance(outcome, Resolved)
    weight = policy_spec.capacity_weights(outcome.lmd, outcome.plan, outcome.fallback_plans)[1]
    assert outcome.fallback_plans[0].cost_per_hour / weight < outcome.plan.cost_per_hour
    kube = ScaleRecordingKube(body)
    reconcile.write_spec_status(kube, body, outcome, now=NOW)  # type: ignore[arg-type]
    scaler = Scaler(kube=kube, reader=FixedReader(BUSY, {}),  # type: ignore[arg-type]
                    settings=OperatorSettings(), post_event=lambda *_: None,
                    metrics=OperatorMetrics(registry=CollectorRegistry()))
    key = (NAMESPACE, NAME)
    record = _fallback_record(0)
    record["metadata"].update(name=h100_fallback, labels={VARIANT_LABEL: "nvidia-h100-80gb"})
    pods = [summarize(_pod(0)), summarize(_pod(1))]  # two ready A100s
    scaler.run_cycle(lmds={key: copy.deepcopy(body)}, deployments={key: deployment_body(2)},
                     variant_deployments={key: {"nvidia-h100-80gb": record}},
                     pods={key: pods}, now=NOW)
    assert kube.replicas[h100_fallback] >= 1
    # The ready A100s stay until the H100s that replace them are ready.
    assert kube.replicas.get(NAME, 2) == 2


@pytest.mark.usefixtures("calibrated")
def test_each_pod_is_annotated_with_its_types_capacity_once() -> None:
    """A router weighs the pods by `lmscale.dev/capacity`: the type's calibrated target."""
    outcome = desired_state(_lmd())
    assert isinstance(outcome, Resolved)
    target = policy_spec.policy_spec(outcome.lmd, outcome.plan, activator=False).target_per_replica
    h100, a100 = f"{target:.2f}", f"{target * _weight():.2f}"
    done = _pod(1, annotations={CAPACITY_ANNOTATION: h100})
    stale = _pod(1, variant=A100, annotations={CAPACITY_ANNOTATION: "99.00"})
    pods = [_pod(0), done, _pod(0, variant=A100), stale]
    kube, _ = _cycle(primary=2, fallback=2, pods=pods, metrics=BUSY)
    names = [p["metadata"]["name"] for p in pods]
    assert kube.pod_notes == {names[0]: {CAPACITY_ANNOTATION: h100},
                              names[2]: {CAPACITY_ANNOTATION: a100},
                              names[3]: {CAPACITY_ANNOTATION: a100}}
    assert float(a100) < float(h100)
