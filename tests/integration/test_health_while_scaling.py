"""What Argo CD sees on the live resource: the health check (health.lua, run through lupa as
Argo CD runs it) on the status the operator writes on the local cluster, while the
autoscaler adds replicas and while no replica can become ready."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.conftest import ClusterHandle, OperatorProcess
from tests.integration.test_autoscaling import LiveSimulator, scaled_lmd
from tests.support import apply, condition, events, get, wait_for
from tests.unit.argocd.test_health_lua import run_health

pytestmark = pytest.mark.cluster


def _live(cluster: ClusterHandle, namespace: str) -> dict[str, Any]:
    body = get(cluster, namespace, "lmd", "chat")
    assert body is not None
    body["metadata"].pop("managedFields", None)
    return body


def test_stays_ready_and_healthy_while_the_scaler_adds_replicas(
    cluster: ClusterHandle, operator: OperatorProcess, simulator: LiveSimulator, namespace: str
) -> None:
    lmd = scaled_lmd()
    # Replicas load for 15 s, so the scale-up is visible for several scaler cycles.
    lmd["spec"]["engine"]["podAnnotations"] = {"pod-ready.stage.kwok.x-k8s.io/delay": "15s"}
    apply(cluster, namespace, lmd)
    wait_for(lambda: (_live(cluster, namespace).get("status") or {}).get("readyReplicas") == 1,
             timeout=90, message="first replica ready")
    simulator.set_load(namespace, "chat", 24)
    samples: list[tuple[int, int, str, str, dict[str, str]]] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body = _live(cluster, namespace)
        status = body["status"]
        ready, desired = status.get("readyReplicas", 0), status.get("desiredReplicas", 0)
        samples.append((ready, desired, condition(body, "Ready").get("status", ""),
                        condition(body, "Progressing").get("reason", ""), run_health(body)))
        if desired >= 2 and ready >= desired and any(s[0] < s[1] for s in samples):
            break
        time.sleep(1.0)
    scaling = [s for s in samples if s[0] < s[1]]
    assert scaling, f"never saw the scale-up under way: {samples[-10:]}"
    assert {s[3] for s in scaling} == {"Scaling"}, scaling
    for ready, desired, ready_status, _, health in samples:
        assert ready_status == "True", (ready, desired, samples)
        assert health["status"] == "Healthy", (ready, desired, health)
    assert samples[-1][0] >= 2, f"the scale-up never finished: {samples[-5:]}"


def test_no_ready_replica_is_progressing_then_degraded_past_the_deadline(
    cluster: ClusterHandle, operator: OperatorProcess, namespace: str
) -> None:
    lmd = scaled_lmd()
    lmd["spec"]["scaling"] = {"enabled": False}
    lmd["spec"]["replicas"] = 1
    # The replica never finishes loading the model.
    lmd["spec"]["engine"]["podAnnotations"] = {"pod-ready.stage.kwok.x-k8s.io/delay": "1h"}
    apply(cluster, namespace, lmd)

    def loading() -> dict[str, Any] | None:
        body = _live(cluster, namespace)
        status = body.get("status") or {}
        return body if (status.get("desiredReplicas") == 1 and status.get("replicas") == 1
                        and condition(body, "Ready").get("status") == "False") else None

    body = wait_for(loading, timeout=60, message="one replica loading, none ready")
    assert condition(body, "Progressing")["status"] == "True"
    assert run_health(body)["status"] == "Progressing"
    # The Deployment's progressDeadlineSeconds is the planner's start-up budget plus slack
    # (15 min at least), too long for a test: set the condition kube-controller-manager
    # sets when it passes. The controller keeps it (a timed-out rollout stays timed out
    # until it progresses), and the operator reads it from the Deployment.
    stalled = {"status": {"conditions": [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
         "message": 'ReplicaSet "chat" has timed out progressing.'},
        {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
         "message": "Deployment does not have minimum availability."}]}}
    cluster.kubectl("patch", "deployment", "chat", "-n", namespace, "--subresource=status",
                    "--type=merge", "-p", json.dumps(stalled))

    def degraded() -> dict[str, Any] | None:
        body = _live(cluster, namespace)
        return body if condition(body, "Degraded").get("status") == "True" else None

    body = wait_for(degraded, timeout=60, message="Degraded=True past the progress deadline")
    assert condition(body, "Degraded")["reason"] == "ProgressDeadlineExceeded"
    health = run_health(body)
    assert health["status"] == "Degraded", health
    assert "past the progress deadline" in health["message"]


def test_kubectl_scale_under_autoscaling_is_reported_not_applied(
    cluster: ClusterHandle, operator: OperatorProcess, namespace: str
) -> None:
    apply(cluster, namespace, scaled_lmd())
    wait_for(lambda: (_live(cluster, namespace).get("status") or {}).get("readyReplicas") == 1,
             timeout=90, message="first replica ready")
    cluster.kubectl("scale", "lmd", "chat", "-n", namespace, "--replicas=5")
    warning = wait_for(lambda: events(cluster, namespace, reason="ReplicasIgnored"),
                       timeout=30, message="ReplicasIgnored event")
    assert "spec.replicas changed 1 -> 5" in warning[0]["message"]
    assert "spec.scaling.enabled" in warning[0]["message"]
    time.sleep(5)  # a few scaler cycles
    deployment = get(cluster, namespace, "deployment", "chat") or {}
    assert deployment["spec"]["replicas"] == 1
