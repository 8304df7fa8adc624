"""GPU-type fallback on the local cluster: the preferred pool runs out, another type carries
the rest, and the fleet moves back when the preferred GPUs free up.

The preferred type is the L4 pool (4 nodes of 1 GPU). A blocker Deployment takes two of
its GPUs, so only two model replicas fit there; the load asks for four units of capacity,
the replicas beyond the pool stay Unschedulable, and after fallbackAfterSeconds the missing
capacity goes to A100 replicas. Deleting the blocker frees the L4s: the fleet moves back,
and ready capacity never drops while it does.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from tests.conftest import ClusterHandle, OperatorProcess
from tests.integration.test_autoscaling import LiveSimulator
from tests.support import apply, condition, events, get, items, wait_for

pytestmark = pytest.mark.cluster

L4, A100 = "nvidia-l4", "nvidia-a100-80gb"
FALLBACK = f"chat-{A100}"
AFTER = 10  # fallbackAfterSeconds
UNITS = 4  # scaling.maxReplicas: the load asks for all of it


def fleet_lmd(fallbacks: list[dict[str, Any]] | None = None, **model: Any) -> dict[str, Any]:
    return {
        "apiVersion": "lmscale.dev/v1alpha1", "kind": "LanguageModelDeployment",
        "metadata": {"name": "chat"},
        "spec": {
            "model": {"name": "meta-llama/Llama-3.1-8B-Instruct",
                      "architecture": "llama-3.1-8b", "maxContextLength": 4096, **model},
            "engine": {"kind": "vllm",
                       "podAnnotations": {"pod-ready.stage.kwok.x-k8s.io/delay": "4s"}},
            "accelerator": {"type": L4, "gpusPerReplica": 1,
                            "fallbacks": fallbacks if fallbacks is not None
                            else [{"type": A100, "gpusPerReplica": 1, "maxReplicas": 4}],
                            "fallbackAfterSeconds": AFTER},
            "slo": {"ttftP95Ms": 5000, "tpotP95Ms": 200},
            "scaling": {"minReplicas": 1, "maxReplicas": UNITS, "targetInFlightPerReplica": 8,
                        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}},
        },
    }


def blocker(gpus: int) -> dict[str, Any]:
    """Pods that hold L4 GPUs, as another team's workload would."""
    labels = {"app": "l4-blocker"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "l4-blocker"},
        "spec": {"replicas": gpus, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {
                     "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-L4"},
                     "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists",
                                      "effect": "NoSchedule"}],
                     "containers": [{"name": "job", "image": "busybox",
                                     "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}},
    }


def _deployment(cluster: ClusterHandle, namespace: str, name: str) -> dict[str, Any]:
    return get(cluster, namespace, "deployment", name) or {}


def _counts(cluster: ClusterHandle, namespace: str) -> dict[str, tuple[int, int]]:
    """(spec.replicas, readyReplicas) of each type's Deployment."""
    out = {}
    for gpu, name in ((L4, "chat"), (A100, FALLBACK)):
        body = _deployment(cluster, namespace, name)
        out[gpu] = (int((body.get("spec") or {}).get("replicas") or 0),
                    int((body.get("status") or {}).get("readyReplicas") or 0))
    return out


def _capacities(cluster: ClusterHandle, namespace: str) -> dict[str, float]:
    """`lmscale.dev/capacity` by GPU type, once every placed pod of that type has the same."""
    pods = items(cluster, namespace, "pods", "lmscale.dev/deployment=chat")
    seen: dict[str, set[str | None]] = {}
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp") or not pod["spec"].get("nodeName"):
            continue
        gpu = (pod["metadata"].get("labels") or {}).get("lmscale.dev/variant") or L4
        seen.setdefault(gpu, set()).add(
            (pod["metadata"].get("annotations") or {}).get("lmscale.dev/capacity"))
    return {gpu: float(next(iter(v))) for gpu, v in seen.items()
            if len(v) == 1 and None not in v}


def _fleet(cluster: ClusterHandle, namespace: str) -> dict[str, Any]:
    return ((get(cluster, namespace, "lmd", "chat") or {}).get("status") or {}).get("fleet") or {}


def test_preferred_pool_out_brings_up_fallback_replicas_and_moves_back(
    cluster: ClusterHandle, operator: OperatorProcess, simulator: LiveSimulator, namespace: str
) -> None:
    apply(cluster, namespace, blocker(2))
    wait_for(lambda: (_deployment(cluster, namespace, "l4-blocker").get("status") or {})
             .get("readyReplicas") == 2, timeout=60, message="blocker holds 2 L4 GPUs")
    apply(cluster, namespace, fleet_lmd())
    # The fallback type's Deployment exists from the start, pinned to its nodes (empty
    # until the L4s run out: tests/unit/k8s/test_variant_children.py).
    fallback = wait_for(lambda: _deployment(cluster, namespace, FALLBACK), timeout=30,
                        message="the A100 Deployment")
    pod_spec = fallback["spec"]["template"]["spec"]
    assert pod_spec["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    wait_for(lambda: _counts(cluster, namespace)[L4][1] >= 1, timeout=90,
             message="first L4 replica ready")
    wait_for(lambda: _fleet(cluster, namespace).get("variants"), timeout=90,
             message="status.fleet (both types calibrated)")

    simulator.set_load(namespace, "chat", 40.0)

    def starved() -> float | None:
        return time.monotonic() if _fleet(cluster, namespace)["variants"][0].get("starved") \
            else None

    starved_at = wait_for(starved, timeout=120, interval=2,
                          message=f"the L4 type starved: {_fleet(cluster, namespace)}")
    wait_for(lambda: _counts(cluster, namespace)[A100][1] >= 1, timeout=AFTER + 60,
             message="an A100 replica ready")
    during = _counts(cluster, namespace)
    assert during[L4][1] <= 2, during  # the L4s beyond the blocker never ran
    fleet = _fleet(cluster, namespace)
    assert fleet["costPerHour"] > 0 and A100 in fleet["types"]
    weight = fleet["variants"][1]["unitsPerReplica"]
    assert weight > 0
    # Each placed pod carries what it carries at the SLO, for the routers to weigh: an A100
    # pod its type's share of an L4 pod's.
    marks = wait_for(lambda: (found := _capacities(cluster, namespace))
                     and {L4, A100} <= found.keys() and found, timeout=30,
                     message=f"lmscale.dev/capacity on the pods: {_capacities(cluster, namespace)}")
    assert marks[A100] == pytest.approx(weight * marks[L4], abs=0.01), marks
    scaled = [e for e in events(cluster, namespace, reason="Scaled")
              if e["message"].startswith(f"scaled {FALLBACK} 0 -> ")]
    assert scaled, "an Event says the A100 Deployment was scaled up"
    assert time.monotonic() - starved_at < AFTER + 60

    # The L4s free up: the fleet moves back, fallbacks drained only once L4s are ready.
    def ready_units() -> float:
        counts = _counts(cluster, namespace)
        return counts[L4][1] + weight * counts[A100][1]

    before = ready_units()
    cluster.kubectl("delete", "deployment", "l4-blocker", "-n", namespace, "--wait=false")
    lowest = before
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        lowest = min(lowest, ready_units())
        counts = _counts(cluster, namespace)
        if counts[A100][0] == 0 and counts[L4][1] >= UNITS:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"the fleet never moved back: {_counts(cluster, namespace)}")
    assert lowest >= min(before, UNITS) - 1e-6, (lowest, before)
    assert _fleet(cluster, namespace)["types"] == f"{L4}={UNITS}"


def test_a_fallback_that_cannot_hold_the_model_is_rejected_by_name(
    cluster: ClusterHandle, operator: OperatorProcess, namespace: str
) -> None:
    body = fleet_lmd([{"type": A100}], architecture="llama-3.1-405b", maxContextLength=8192)
    body["spec"]["accelerator"]["type"] = "nvidia-h200"
    body["spec"]["accelerator"]["gpusPerReplica"] = "auto"
    apply(cluster, namespace, body)
    invalid = wait_for(lambda: condition(get(cluster, namespace, "lmd", "chat"), "InvalidSpec")
                       .get("status") == "True"
                       and condition(get(cluster, namespace, "lmd", "chat"), "InvalidSpec"),
                       timeout=30, message="InvalidSpec")
    assert invalid["reason"] == "DoesNotFit"
    assert "spec.accelerator.fallbacks[0].type" in invalid["message"]
    warned = wait_for(lambda: [e for e in events(cluster, namespace, reason="InvalidSpec")
                               if "spec.accelerator.fallbacks[0].type" in e["message"]],
                      timeout=30, message="a Warning Event naming the fallback")
    assert warned[0]["type"] == "Warning"
    assert get(cluster, namespace, "deployment", "chat") is None


def test_the_apiserver_rejects_a_fallback_repeating_the_primary(
    cluster: ClusterHandle, lmscale_crds: None, namespace: str
) -> None:
    body = fleet_lmd([{"type": L4}])
    result = cluster.kubectl("apply", "-n", namespace, "-f", "-", check=False,
                             stdin=yaml.safe_dump(body))
    assert result.returncode != 0
    assert "spec.accelerator.fallbacks" in result.stderr
    assert "must not repeat accelerator.type" in result.stderr
