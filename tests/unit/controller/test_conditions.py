"""Workload conditions from a Deployment and its pods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lmscale.controller import conditions
from lmscale.controller.pods import PodInfo, summarize

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def pod(name: str, *, ready: bool = True, unschedulable: str | None = None,
        crash: bool = False, terminating: bool = False) -> PodInfo:
    return PodInfo(namespace="ns", name=name, created=NOW - timedelta(minutes=5), ready=ready,
                   ready_since=NOW if ready else None, terminating=terminating,
                   unschedulable_message=unschedulable, crash_looping=crash,
                   deletion_cost=None)


def deployment(*, replicas: int = 2, updated: int = 2, generation: int = 1,
               observed: int = 1, extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"metadata": {"generation": generation}, "spec": {"replicas": replicas},
            "status": {"observedGeneration": observed, "updatedReplicas": updated,
                       "conditions": extra or []}}


def workload(pods: list[PodInfo], *, desired: int = 2, minimum: int | None = None,
             dep: dict[str, Any] | None = None) -> conditions.Workload:
    return conditions.Workload(generation=3, desired_replicas=desired,
                               deployment=dep if dep is not None else deployment(), pods=pods,
                               minimum_available=minimum)


@pytest.mark.parametrize(("pods", "desired", "status", "reason"), [
    pytest.param([pod("a"), pod("b")], 2, "True", "Available", id="all-ready"),
    pytest.param([pod("a"), pod("b", ready=False)], 2, "False", "ReplicasNotReady",
                 id="one-loading"),
    pytest.param([pod("a"), pod("b", terminating=True)], 2, "False", "ReplicasNotReady",
                 id="terminating-pods-do-not-serve"),
    pytest.param([], 0, "True", "ScaledToZero", id="scaled-to-zero"),
])
def test_ready(pods: list[PodInfo], desired: int, status: str, reason: str) -> None:
    c = conditions.ready(workload(pods, desired=desired), now=NOW)
    assert (c.status.value, c.reason, c.observed_generation) == (status, reason, 3)


@pytest.mark.parametrize(("ready", "desired", "minimum", "status"), [
    pytest.param(3, 4, 1, "True", id="serving-while-scaling-up"),
    pytest.param(1, 4, 1, "True", id="the-minimum-serves"),
    pytest.param(1, 4, 2, "False", id="below-min-replicas"),
    pytest.param(0, 4, 0, "False", id="at-least-one-when-any-desired"),
    pytest.param(2, 2, 5, "True", id="minimum-capped-at-desired"),
])
def test_ready_is_available_from_the_minimum(ready: int, desired: int, minimum: int,
                                             status: str) -> None:
    pods = [pod(f"p{i}", ready=i < ready) for i in range(desired)]
    w = workload(pods, desired=desired, minimum=minimum,
                 dep=deployment(replicas=desired, updated=desired))
    c = conditions.ready(w, now=NOW)
    assert c.status.value == status
    assert c.message.startswith(f"{ready}/{desired} replicas ready")
    assert conditions.progressing(w, now=NOW).reason == (
        "Scaling" if ready < desired else "Reconciled")


def test_ready_is_unknown_until_the_deployment_exists() -> None:
    c = conditions.ready(conditions.Workload(generation=1, desired_replicas=0,
                                             deployment=None, pods=[]), now=NOW)
    assert (c.status.value, c.reason) == ("Unknown", "DeploymentPending")


def _spec(**scaling: Any) -> Any:
    from lmscale.api import parse_spec
    spec = parse_spec({
        "model": {"name": "m", "architecture": "llama-3.1-8b"}, "engine": {"kind": "vllm"},
        "accelerator": {"type": "nvidia-h100-80gb"}, "slo": {"ttftP95Ms": 500},
        "scaling": scaling})
    assert not isinstance(spec, list), spec
    return spec


@pytest.mark.parametrize(("scaling", "desired", "minimum"), [
    pytest.param({"minReplicas": 2, "maxReplicas": 8}, 6, 2, id="autoscaling-min-replicas"),
    pytest.param({"minReplicas": 2, "maxReplicas": 8}, 1, 1, id="never-above-desired"),
    pytest.param({"minReplicas": 1, "maxReplicas": 8,
                  "scaleToZero": {"enabled": True}}, 3, 1, id="scale-to-zero-one-serves"),
    pytest.param({"enabled": False}, 4, 3, id="by-hand-all-but-one-as-the-pdb"),
    pytest.param({"enabled": False}, 1, 1, id="by-hand-single"),
    pytest.param({"minReplicas": 2, "maxReplicas": 8}, 0, 0, id="zero-desired"),
])
def test_minimum_available(scaling: dict[str, Any], desired: int, minimum: int) -> None:
    assert conditions.minimum_available(_spec(**scaling), desired) == minimum


def test_degraded_past_the_progress_deadline_only_when_not_serving() -> None:
    stalled = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                "message": "ReplicaSet \"x\" has timed out progressing."}]
    dep = deployment(replicas=2, updated=2, extra=stalled)
    down = conditions.degraded(workload([pod("a", ready=False), pod("b", ready=False)],
                                        minimum=1, dep=dep), now=NOW)
    assert (down.status.value, down.reason) == ("True", "ProgressDeadlineExceeded")
    assert "timed out progressing" in down.message
    serving = conditions.degraded(workload([pod("a"), pod("b", ready=False)], minimum=1,
                                           dep=dep), now=NOW)
    assert serving.status.value == "False"


@pytest.mark.parametrize(("w", "status", "reason"), [
    pytest.param(workload([pod("a"), pod("b")]), "False", "Reconciled", id="settled"),
    pytest.param(workload([pod("a"), pod("b")], dep=deployment(updated=1)), "True",
                 "RollingOut", id="rolling-update"),
    pytest.param(workload([pod("a"), pod("b")], dep=deployment(generation=2)), "True",
                 "RollingOut", id="new-generation-not-observed"),
    pytest.param(workload([pod("a")], desired=3, dep=deployment(replicas=3, updated=3)), "True",
                 "Scaling", id="scaling-up"),
    pytest.param(workload([pod("a")], dep=deployment(extra=[{
        "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
        "message": "ReplicaSet x has timed out progressing."}])), "False",
        "ProgressDeadlineExceeded", id="stalled"),
])
def test_progressing(w: conditions.Workload, status: str, reason: str) -> None:
    c = conditions.progressing(w, now=NOW)
    assert (c.status.value, c.reason) == (status, reason)


def test_degraded_names_crash_looping_pods() -> None:
    c = conditions.degraded(workload([pod("a"), pod("b", crash=True, ready=False)]), now=NOW)
    assert (c.status.value, c.reason) == ("True", "CrashLooping")
    assert "b" in c.message


def test_unschedulable_carries_the_schedulers_message() -> None:
    message = "0/8 nodes are available: 8 node(s) didn't match Pod's node affinity/selector."
    c = conditions.schedulable(workload([pod("a", ready=False, unschedulable=message)]), now=NOW)
    assert (c.status.value, c.reason) == ("False", "Unschedulable")
    assert message in c.message and "a:" in c.message


def test_summarize_reads_readiness_scheduling_and_deletion_cost() -> None:
    body = {
        "metadata": {"name": "p", "namespace": "ns", "creationTimestamp": "2026-01-01T00:00:00Z",
                     "annotations": {"controller.kubernetes.io/pod-deletion-cost": "-5"}},
        "status": {"conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
             "message": "Insufficient nvidia.com/gpu"},
            {"type": "Ready", "status": "False"}],
            "containerStatuses": [{"state": {"waiting": {"reason": "CrashLoopBackOff"}}}]},
    }
    info = summarize(body)
    assert info.unschedulable_message == "Insufficient nvidia.com/gpu"
    assert info.crash_looping and not info.ready and info.deletion_cost == -5
    assert info.created == datetime(2026, 1, 1, tzinfo=UTC)


def test_replicas_ignored_under_autoscaling_names_the_fields() -> None:
    from lmscale.api import LanguageModelDeployment
    from lmscale.controller.desired import ignored_replicas

    auto = LanguageModelDeployment(metadata={"name": "chat"},
                                   spec=_spec(minReplicas=1, maxReplicas=8))
    message = ignored_replicas({"replicas": 1}, {"replicas": 5}, auto)
    assert message is not None
    assert "spec.replicas changed 1 -> 5" in message and "spec.scaling.enabled" in message
    assert ignored_replicas({"replicas": 5}, {"replicas": 5}, auto) is None
    assert ignored_replicas(None, {"replicas": 5}, auto) is None  # created, not changed
    assert ignored_replicas({}, {"replicas": 1}, auto) is None  # the default filled in
    by_hand = LanguageModelDeployment(metadata={"name": "chat"}, spec=_spec(enabled=False))
    assert ignored_replicas({"replicas": 1}, {"replicas": 5}, by_hand) is None
