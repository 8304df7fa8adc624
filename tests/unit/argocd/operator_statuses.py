"""LanguageModelDeployments as the operator really writes them, for health.lua's testdata.

Each scenario sets up the observed world (a spec, the child Deployment, its pods, what
Prometheus answered) and runs the operator's own status writers over it: the reconciler's
`write_spec_status` and one `Scaler.run_cycle`, against a Kube that records what they apply.
The testdata files under examples/argocd/health/.../testdata/ are these objects, trimmed of
the parts that health.lua never reads and that change with the planner and the policy
(capacityPlan, metrics, scaling history, last scale).

Regenerate them with `LMSCALE_UPDATE_TESTDATA=1 pytest tests/unit/argocd`.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any
from unittest import mock

from lmscale.controller.desired import desired_state
from lmscale.controller.pods import summarize
from lmscale.k8s import reconcile
from lmscale.metrics.results import (
    DeploymentMetrics,
    Key,
    Metric,
    MetricsSnapshot,
    Outcome,
    QueryState,
    QueryStatus,
)
from lmscale.operator_metrics import OperatorMetrics
from lmscale.scaler.cycle import Scaler
from lmscale.settings import OperatorSettings

NOW = datetime(2026, 6, 2, 9, 12, tzinfo=UTC)
NAMESPACE, NAME = "team-a", "chat"
TRIMMED = ("capacityPlan", "metrics", "scaling", "lastScaleTime", "lastScaleReason")
UNSCHEDULABLE = "0/6 nodes are available: 6 Insufficient nvidia.com/gpu."


class RecordingKube:
    """The part of `lmscale.k8s.client.Kube` the status writers use: it keeps the status."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    def apply(self, manifest: Mapping[str, Any], *, field_manager: str,
              subresource: str | None = None) -> dict[str, Any]:
        if subresource == "status":
            # Server-side apply: each field manager owns its own entries of the conditions
            # list (a map keyed by type), so writers merge rather than replace it.
            status = self.body.setdefault("status", {})
            applied = copy.deepcopy(dict(manifest["status"]))
            merged = {c["type"]: c for c in status.get("conditions") or []}
            merged.update({c["type"]: c for c in applied.pop("conditions", [])})
            status.update(applied)
            status["conditions"] = list(merged.values())
        return dict(manifest)

    def merge_patch(self, *_: Any, **__: Any) -> None:
        return None


class FixedReader:
    """Prometheus' answer for one cycle, as the metrics reader hands it to the scaler."""

    def __init__(self, metrics: DeploymentMetrics, queries: Mapping[Metric, QueryStatus]) -> None:
        self.metrics, self.queries = metrics, queries

    def read(self, targets: Any, *, now: float) -> MetricsSnapshot:
        return MetricsSnapshot(now=now, deployments={Key(NAMESPACE, NAME): self.metrics},
                               queries=self.queries)


STEADY = DeploymentMetrics(waiting=0.0, running=8.0, kv_cache_usage=0.3,
                           ttft_p95_seconds=0.2, gpu_utilization=0.6,
                           prompt_tokens_per_second=2000.0, reporting_replicas=2.0)
BUSY = dataclasses.replace(STEADY, waiting=40.0, running=16.0, ttft_p95_seconds=0.9)
FAILED = MappingProxyType(dict.fromkeys((Metric.WAITING, Metric.RUNNING), Outcome.ERROR))
PROMETHEUS_DOWN = {m: QueryStatus(m, QueryState.FAILED, message="Prometheus query failed: "
                                  "connection refused") for m in (Metric.WAITING, Metric.RUNNING)}


def lmd_body(*, generation: int = 3, **spec_changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": {"name": "meta-llama/Llama-3.1-8B-Instruct", "architecture": "llama-3.1-8b",
                  "maxContextLength": 8192},
        "engine": {"kind": "vllm"},
        "accelerator": {"type": "nvidia-h100-80gb", "gpusPerReplica": 1},
        "slo": {"ttftP95Ms": 500, "tpotP95Ms": 60},
        "scaling": {"minReplicas": 1, "maxReplicas": 8, "targetInFlightPerReplica": 8},
    }
    spec.update(spec_changes)
    return {"apiVersion": "lmscale.dev/v1alpha1", "kind": "LanguageModelDeployment",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "generation": generation,
                         "uid": "5b0e4f5e-2a0c-4a53-9d3e-6f1c2b7a9e10",
                         "creationTimestamp": "2026-06-02T09:00:00Z"},
            "spec": spec}


def deployment_body(replicas: int, *, updated: int | None = None, generation: int = 1,
                    observed: int | None = None, stalled: bool = False) -> dict[str, Any]:
    """The child Deployment as kube-controller-manager reports it."""
    progressing = ({"type": "Progressing", "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "message": f'ReplicaSet "{NAME}-7d9c" has timed out progressing.'}
                   if stalled else
                   {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                    "message": f'ReplicaSet "{NAME}-7d9c" is progressing.'})
    return {"metadata": {"name": NAME, "namespace": NAMESPACE, "generation": generation},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": generation if observed is None else observed,
                       "replicas": replicas,
                       "updatedReplicas": replicas if updated is None else updated,
                       "conditions": [progressing]}}


def pod_body(index: int, *, ready: bool = True, unschedulable: bool = False,
             crash: bool = False) -> dict[str, Any]:
    name = f"{NAME}-7d9c-{index:05d}"
    created = (NOW - timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    conditions: list[dict[str, Any]] = [{"type": "Ready", "status": str(ready),
                                         "lastTransitionTime": created}]
    if unschedulable:
        conditions.append({"type": "PodScheduled", "status": "False",
                           "reason": "Unschedulable", "message": UNSCHEDULABLE})
    status: dict[str, Any] = {"conditions": conditions}
    if crash:
        status["containerStatuses"] = [{"name": "engine",
                                        "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]
    return {"metadata": {"name": name, "namespace": NAMESPACE, "creationTimestamp": created},
            "status": status}


@dataclasses.dataclass(frozen=True)
class Scenario:
    """The world one cycle sees, and what happens to the object afterwards."""

    lmd: dict[str, Any]
    deployment: dict[str, Any] | None
    pods: tuple[dict[str, Any], ...] = ()
    metrics: DeploymentMetrics = STEADY
    queries: Mapping[Metric, QueryStatus] | None = None
    written: bool = True  # False: the operator has not written status yet
    after: Callable[[dict[str, Any]], None] | None = None
    activator: bool = False  # the chart's activator installed (scale to zero needs one)


def operator_object(scenario: Scenario) -> dict[str, Any]:
    """The object after the reconciler and one scaling cycle wrote its status."""
    body = copy.deepcopy(scenario.lmd)
    if scenario.written:
        kube = RecordingKube(body)
        outcome = desired_state(body)
        reconcile.write_spec_status(kube, body, outcome, now=NOW)  # type: ignore[arg-type]
        scaler = Scaler(kube=kube, reader=FixedReader(scenario.metrics, scenario.queries or {}),  # type: ignore[arg-type]
                        settings=OperatorSettings(), post_event=lambda *_: None,
                        metrics=OperatorMetrics(registry=_registry()))
        key = (NAMESPACE, NAME)
        env = {"LMSCALE_ACTIVATOR_SERVICE": "lmscale-system/lmscale-activator"}
        with mock.patch.dict(os.environ, env if scenario.activator else {}):
            scaler.run_cycle(
                lmds={key: copy.deepcopy(body)},
                deployments={key: scenario.deployment} if scenario.deployment else {},
                pods={key: [summarize(p) for p in scenario.pods]}, now=NOW)
    if scenario.after is not None:
        scenario.after(body)
    return body


def _registry() -> Any:
    from prometheus_client import CollectorRegistry
    return CollectorRegistry()


def trimmed(body: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(body)
    for key in TRIMMED:
        (out.get("status") or {}).pop(key, None)
    return out


def _new_generation(body: dict[str, Any]) -> None:
    body["metadata"]["generation"] += 1
    body["spec"]["model"]["maxContextLength"] = 4096


def _deleting(body: dict[str, Any]) -> None:
    body["metadata"]["deletionTimestamp"] = "2026-06-02T09:20:00Z"


def _pods(ready: int, *, loading: int = 0, pending: int = 0, crashing: int = 0
          ) -> tuple[dict[str, Any], ...]:
    kinds = ([{}] * ready + [{"ready": False}] * loading
             + [{"ready": False, "unschedulable": True}] * pending
             + [{"ready": False, "crash": True}] * crashing)
    return tuple(pod_body(i, **kind) for i, kind in enumerate(kinds))


SCENARIOS: dict[str, Scenario] = {
    "healthy": Scenario(lmd_body(), deployment_body(2), _pods(2)),
    "healthy-scaling": Scenario(lmd_body(), deployment_body(4), _pods(2, loading=2), BUSY),
    "healthy-scaling-by-hand": Scenario(
        lmd_body(scaling={"enabled": False}, replicas=4), deployment_body(4),
        _pods(3, loading=1)),
    "healthy-scaled-to-zero": Scenario(
        lmd_body(scaling={"minReplicas": 1, "maxReplicas": 8, "targetInFlightPerReplica": 8,
                          "scaleToZero": {"enabled": True}}),
        deployment_body(0), (), dataclasses.replace(STEADY, running=0.0,
                                                     reporting_replicas=0.0),
        activator=True),
    "healthy-metrics-unavailable": Scenario(
        lmd_body(), deployment_body(2), _pods(2),
        DeploymentMetrics(missing=FAILED), PROMETHEUS_DOWN),
    "healthy-partly-unschedulable": Scenario(lmd_body(), deployment_body(4),
                                             _pods(2, pending=2), BUSY),
    "healthy-scale-up-stalled": Scenario(lmd_body(), deployment_body(4, stalled=True),
                                         _pods(2, pending=2), BUSY),
    "progressing-no-status": Scenario(lmd_body(), None, written=False),
    "progressing-old-generation": Scenario(lmd_body(), deployment_body(2), _pods(2),
                                           after=_new_generation),
    "progressing-starting": Scenario(lmd_body(), deployment_body(1), _pods(0, loading=1)),
    "progressing-deployment-pending": Scenario(lmd_body(), None),
    "progressing-rollout": Scenario(lmd_body(), deployment_body(2, updated=1, generation=2),
                                    _pods(2)),
    "degraded-invalid-spec": Scenario(
        lmd_body(accelerator={"type": "nvidia-h100", "gpusPerReplica": 1}),
        deployment_body(2), _pods(2)),
    "degraded": Scenario(lmd_body(), deployment_body(2), _pods(1, crashing=1)),
    "degraded-unschedulable": Scenario(lmd_body(), deployment_body(1), _pods(0, pending=1)),
    "degraded-progress-deadline": Scenario(lmd_body(), deployment_body(1, stalled=True),
                                           _pods(0, loading=1)),
    "suspended": Scenario(lmd_body(scaling={"enabled": False}, replicas=0),
                          deployment_body(0)),
    "terminating": Scenario(lmd_body(), deployment_body(2), _pods(2), after=_deleting),
}
