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


def workload(pods: list[PodInfo], *, desired: int = 2,
             dep: dict[str, Any] | None = None) -> conditions.Workload:
    return conditions.Workload(generation=3, desired_replicas=desired,
                               deployment=dep if dep is not None else deployment(), pods=pods)


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
