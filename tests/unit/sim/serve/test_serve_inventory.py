"""API bodies to the fleet's input: plans from the operator's planner, pods by readiness."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lmscale.sim.serve import inventory
from lmscale.sim.serve.fleet import PodInfo


def lmd(name: str = "chat", *, engine: str = "vllm", generation: int = 1,
        gpu: str = "nvidia-h100-80gb") -> dict[str, Any]:
    return {
        "apiVersion": "lmscale.dev/v1alpha1", "kind": "LanguageModelDeployment",
        "metadata": {"name": name, "namespace": "team-a", "uid": f"uid-{name}",
                     "generation": generation},
        "spec": {
            "model": {"name": "meta-llama/Llama-3.1-8B-Instruct",
                      "architecture": "llama-3.1-8b", "maxContextLength": 8192},
            "engine": {"kind": engine},
            "accelerator": {"type": gpu, "gpusPerReplica": "auto"},
            "slo": {"ttftP95Ms": 500, "tpotP95Ms": 60},
        },
    }


def pod(name: str, owner: str = "chat", *, ready: bool = True, deleting: bool = False,
        phase: str = "Running") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "team-a",
                            "labels": {"lmscale.dev/deployment": owner}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": meta,
        "spec": {"nodeName": "gpu-1"},
        "status": {"phase": phase,
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def test_a_deployment_gets_its_plan_engine_and_pods() -> None:
    found = inventory.deployments(
        [lmd()], [pod("chat-b"), pod("chat-a", ready=False), pod("other-x", "other")],
        inventory.Planner())

    assert len(found) == 1
    info = found[0]
    assert (info.namespace, info.name, info.engine) == ("team-a", "chat", "vllm")
    assert info.model == "meta-llama/Llama-3.1-8B-Instruct"
    assert info.gpu_model == "NVIDIA H100 80GB HBM3" and info.gpus_per_replica == 1
    assert info.perf.kv_capacity_tokens > 0 and info.perf.max_num_seqs > 0
    assert info.pods == (PodInfo("chat-a", False, "gpu-1"), PodInfo("chat-b", True, "gpu-1"))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(pod("p"), PodInfo("p", True, "gpu-1"), id="ready"),
        pytest.param(pod("p", ready=False), PodInfo("p", False, "gpu-1"), id="not-ready"),
        pytest.param(pod("p", deleting=True), PodInfo("p", False, "gpu-1"), id="terminating"),
        pytest.param(pod("p", phase="Failed"), None, id="failed"),
        pytest.param(pod("p", phase="Succeeded"), None, id="succeeded"),
        pytest.param({"metadata": {"name": "p", "labels": {}}}, None, id="no-deployment-label"),
        pytest.param({"metadata": {"name": "p", "namespace": "n",
                                   "labels": {"lmscale.dev/deployment": "chat"}}},
                     PodInfo("p", False, ""), id="no-status-yet"),
    ],
)
def test_pod_states(body: dict[str, Any], expected: PodInfo | None) -> None:
    assert inventory.pod_info(body)[1] == expected


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(lmd(gpu="nvidia-nope"), id="unknown-gpu"),
        pytest.param({**lmd(), "spec": {"model": {}}}, id="invalid-spec"),
        pytest.param({"metadata": {"name": "x", "namespace": "team-a"}}, id="no-spec"),
    ],
)
def test_deployments_the_operator_cannot_serve_are_left_out(body: dict[str, Any]) -> None:
    assert inventory.deployments([body], [pod("x-0", "x")], inventory.Planner()) == []


def test_each_engine_kind_is_played() -> None:
    found = inventory.deployments(
        [lmd("a", engine="vllm"), lmd("b", engine="tgi"), lmd("c", engine="sglang")], [],
        inventory.Planner())

    assert [(d.name, d.engine) for d in found] == [("a", "vllm"), ("b", "tgi"), ("c", "sglang")]


def test_plans_are_cached_per_generation() -> None:
    planner = inventory.Planner()
    first = planner.template(lmd())
    again = planner.template(copy.deepcopy(lmd()))
    changed = planner.template(lmd(generation=2, gpu="nvidia-a100-80gb"))

    assert first is again
    assert changed is not None and first is not None
    assert changed[2] == "NVIDIA A100 SXM4 80GB"


def test_a_fallback_types_pod_plays_its_own_plan() -> None:
    """A pod of accelerator.fallbacks runs as fast as its own GPU type's plan, and its GPU
    metrics carry that type's DCGM name."""
    body = lmd()
    body["spec"]["accelerator"]["fallbacks"] = [{"type": "nvidia-a100-80gb",
                                                 "gpusPerReplica": 2}]
    fallback = pod("chat-a100-x")
    fallback["metadata"]["labels"]["lmscale.dev/variant"] = "nvidia-a100-80gb"
    (info,) = inventory.deployments([body], [pod("chat-h100-y"), fallback], inventory.Planner())
    by_name = {p.name: p for p in info.pods}
    assert by_name["chat-a100-x"].variant == "nvidia-a100-80gb"
    assert by_name["chat-h100-y"].variant is None
    a100 = info.for_pod(by_name["chat-a100-x"])
    assert a100.gpu_model == "NVIDIA A100 SXM4 80GB" and a100.gpus_per_replica == 2
    assert a100.perf != info.perf
    assert info.for_pod(by_name["chat-h100-y"]) is info
