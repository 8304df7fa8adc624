"""The operator against the real control plane: children, status, events, drift, deletion."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.conftest import ClusterHandle, OperatorProcess
from tests.support import apply, condition, events, get, items, wait_for

pytestmark = pytest.mark.cluster

H100 = "NVIDIA-H100-80GB-HBM3"
CHILD_KINDS = ("deployment", "service", "ingress", "poddisruptionbudget")


def lmd(name: str = "chat", **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": {"name": "meta-llama/Llama-3.1-8B-Instruct", "architecture": "llama-3.1-8b",
                  "maxContextLength": 8192},
        "engine": {"kind": "vllm"},
        "accelerator": {"type": "nvidia-h100-80gb", "gpusPerReplica": "auto"},
        "slo": {"ttftP95Ms": 500, "tpotP95Ms": 60},
        "scaling": {"minReplicas": 2, "maxReplicas": 4},
        "ingress": {"enabled": True, "className": "nginx", "host": "chat.example.com",
                    "loadBalancing": "ewma"},
    }
    for key, value in overrides.items():
        spec[key] = value
    return {"apiVersion": "lmscale.dev/v1alpha1", "kind": "LanguageModelDeployment",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/instance": "argo-app"}},
            "spec": spec}


def ready_lmd(cluster: ClusterHandle, namespace: str, name: str = "chat") -> dict[str, Any]:
    return wait_for(
        lambda: (b := get(cluster, namespace, "lmd", name))
        and condition(b, "Ready").get("status") == "True" and b,
        timeout=90, message=f"{name} Ready")


def test_children_are_created_owned_and_pinned_to_the_gpu_type(
    cluster: ClusterHandle, operator: OperatorProcess, namespace: str
) -> None:
    apply(cluster, namespace, lmd())
    deployment = wait_for(lambda: get(cluster, namespace, "deployment", "chat"), timeout=30,
                          message="Deployment created")
    parent = get(cluster, namespace, "lmd", "chat")
    assert parent is not None
    for kind in CHILD_KINDS:
        child = wait_for(lambda k=kind: get(cluster, namespace, k, "chat"), timeout=15,
                         message=f"{kind} created")
        owners = child["metadata"]["ownerReferences"]
        assert [(o["kind"], o["uid"], o["controller"]) for o in owners] == [
            ("LanguageModelDeployment", parent["metadata"]["uid"], True)]
        # the GitOps tracking label of the parent is never copied onto a child
        assert child["metadata"]["labels"].get("app.kubernetes.io/instance") != "argo-app"
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": H100}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "--max-model-len" in " ".join(container["args"] + container.get("command", []))
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    ingress = get(cluster, namespace, "ingress", "chat")
    assert ingress is not None
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/load-balance"] == "ewma"
    # replicas belong to the scaler's field manager, the template to the reconciler's
    # (the first replicas are applied right after the create)
    deployment = wait_for(
        lambda: (d := get(cluster, namespace, "deployment", "chat")) and any(
            f["manager"] == "lmscale-scaler" for f in d["metadata"]["managedFields"]) and d,
        timeout=15, message="the scaler's replicas on the Deployment")
    managers = {f["manager"]: f for f in deployment["metadata"]["managedFields"]}
    assert "f:replicas" in json.dumps(managers["lmscale-scaler"]["fieldsV1"])
    assert "f:replicas" not in json.dumps(managers["lmscale"]["fieldsV1"])


def test_status_reports_plan_conditions_and_ready_pods_on_h100(
    cluster: ClusterHandle, operator: OperatorProcess, namespace: str
) -> None:
    apply(cluster, namespace, lmd())
    body = ready_lmd(cluster, namespace)
    status = body["status"]
    assert status["observedGeneration"] == body["metadata"]["generation"]
    assert status["readyReplicas"] == 2
    assert status["desiredReplicas"] == 2
    assert status["selector"] == "lmscale.dev/deployment=chat"
    assert status["capacityPlan"]["gpusPerReplica"] == 1
    assert status["url"] == "http://chat.example.com"
    assert status["capacityPlan"]["fits"] is True
    assert condition(body, "InvalidSpec")["status"] == "False"
    assert condition(body, "Schedulable")["status"] == "True"
    nodes = {n["metadata"]["name"]: n["metadata"]["labels"]["nvidia.com/gpu.product"]
             for n in items(cluster, "", "nodes")}
    pods = items(cluster, namespace, "pods", "lmscale.dev/deployment=chat")
    assert {nodes[p["spec"]["nodeName"]] for p in pods} == {H100}
    expected = {"Deployment chat", "Service chat", "Ingress chat", "PodDisruptionBudget chat"}

    def created() -> list[set[str]]:
        return [set(e["message"].split(":")[0].removeprefix("created ").split(", "))
                for e in events(cluster, namespace, reason="Created")
                if e["involvedObject"]["kind"] == "LanguageModelDeployment"]

    # kopf posts Events from a queue of its own: they may come a moment after Ready. One
    # Event names every child created (a fleet applied at once writes a quarter as many).
    wait_for(lambda: any(expected <= c for c in created()), timeout=30,
             message="one Created event naming every child")


def test_operator_never_writes_spec(
    cluster: ClusterHandle, operator: OperatorProcess, namespace: str
) -> None:
    apply(cluster, namespace, lmd())
    body = ready_lmd(cluster, namespace)
    for entry in body["metadata"]["managedFields"]:
        if entry["manager"].startswith("lmscale") or entry["manager"].startswith("kopf"):
            assert entry.get("subresource") == "status", entry["manager"]
    assert not any(k.startswith("kopf") for k in body["metadata"].get("annotations") or {})


def test_spec_change_rolls_out(
    cluster: ClusterHandle, operator: OperatorProcess, namespace: str
) -> None:
    apply(cluster, namespace, lmd())
    ready_lmd(cluster, namespace)
    changed = lmd()
    changed["spec"]["model"]["maxContextLength"] = 4096
    apply(cluster, namespace, changed)

    def rolled() -> bool:
        d = get(cluster, namespace, "deployment", "chat") or {}
        args = d["spec"]["template"]["spec"]["containers"][0]["args"]
        return "4096" in args

    wait_for(rolled, timeout=30, message="new --max-model-len in the pod template")
    body = wait_for(lambda: (b := get(cluster, namespace, "lmd", "chat"))
                    and b["status"].get("observedGeneration") == 2 and b,
                    timeout=30, message="observedGeneration 2")
    assert body["status"]["capacityPlan"]["context"] == 4096


def test_deleted_and_edited_children_come_back(
    cluster: ClusterHandle, operator: OperatorProcess, namespace: str
) -> None:
    apply(cluster, namespace, lmd())
    deployment = wait_for(lambda: get(cluster, namespace, "deployment", "chat"), timeout=30,
                          message="Deployment created")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    wait_for(lambda: get(cluster, namespace, "service", "chat"), timeout=15, message="Service")
    old_uid = get(cluster, namespace, "service", "chat")["metadata"]["uid"]  # type: ignore[index]
    cluster.kubectl("delete", "service", "chat", "-n", namespace)
    cluster.kubectl("set", "image", "deployment/chat", "engine=busybox", "-n", namespace)
    wait_for(lambda: (s := get(cluster, namespace, "service", "chat"))
             and s["metadata"]["uid"] != old_uid, timeout=20, message="Service recreated")
    wait_for(lambda: (d := get(cluster, namespace, "deployment", "chat"))
             and d["spec"]["template"]["spec"]["containers"][0]["image"] == image,
             timeout=20, message="image restored")
    assert events(cluster, namespace, reason="DriftCorrected")


def test_deleting_the_resource_garbage_collects_children(
    cluster: ClusterHandle, operator: OperatorProcess, namespace: str
) -> None:
    apply(cluster, namespace, lmd())
    wait_for(lambda: get(cluster, namespace, "poddisruptionbudget", "chat"), timeout=30,
             message="children created")
    cluster.kubectl("delete", "lmd", "chat", "-n", namespace)
    for kind in CHILD_KINDS:
        wait_for(lambda k=kind: get(cluster, namespace, k, "chat") is None, timeout=60,
                 message=f"{kind} garbage-collected")


@pytest.mark.parametrize(
    ("change", "field", "hint"),
    [
        pytest.param({"model": {"name": "x/y", "architecture": "llama-3.1-9b"}},
                     "spec.model.architecture", "llama-3.1-8b", id="unknown-architecture"),
        pytest.param({"accelerator": {"type": "nvidia-h300"}},
                     "spec.accelerator.type", "nvidia-h", id="unknown-gpu"),
        pytest.param({"model": {"name": "x/y", "architecture": "llama-3.1-8b",
                                "maxContextLength": 1_000_000}},
                     "spec.model.maxContextLength", "131072", id="context-too-long"),
        pytest.param({"model": {"name": "x/y", "architecture": "llama-3.1-405b"},
                      "accelerator": {"type": "nvidia-l4"}},
                     "spec.accelerator", "GiB", id="does-not-fit"),
        pytest.param({"engine": {"kind": "vllm", "args": ["--enable-prefix-cache"]}},
                     "spec.engine.args[0]", "did you mean --enable-prefix-caching",
                     id="engine-flag-unknown-to-vllm"),
    ],
)
def test_invalid_spec_is_reported_and_running_children_are_left_alone(
    cluster: ClusterHandle, operator: OperatorProcess, namespace: str,
    change: dict[str, Any], field: str, hint: str,
) -> None:
    apply(cluster, namespace, lmd())
    before = wait_for(lambda: get(cluster, namespace, "deployment", "chat"), timeout=30,
                      message="Deployment created")
    bad = lmd()
    for key, value in change.items():
        bad["spec"][key] = copy.deepcopy(value)
    apply(cluster, namespace, bad)
    body = wait_for(lambda: (b := get(cluster, namespace, "lmd", "chat"))
                    and condition(b, "InvalidSpec").get("status") == "True" and b,
                    timeout=30, message="InvalidSpec=True")
    message = condition(body, "InvalidSpec")["message"]
    assert field in message
    assert hint in message
    after = get(cluster, namespace, "deployment", "chat")
    assert after is not None
    # The template is untouched; replicas are the scaler's and may have moved meanwhile.
    assert after["spec"]["template"] == before["spec"]["template"]
    warnings = [e for e in events(cluster, namespace, reason="InvalidSpec")
                if e["type"] == "Warning"]
    assert warnings and field in warnings[0]["message"]
    assert "Traceback" not in operator.log_tail(200)


def test_scale_to_zero_without_an_activator_is_warned_of_and_not_applied(
    cluster: ClusterHandle, operator: OperatorProcess, namespace: str
) -> None:
    # This operator runs without LMSCALE_ACTIVATOR_SERVICE, as the chart with
    # activator.enabled=false: nothing would hold a request for a model at zero.
    apply(cluster, namespace, lmd(scaling={"minReplicas": 1, "maxReplicas": 2,
                                           "scaleToZero": {"enabled": True}}))
    warning = wait_for(lambda: [e for e in events(cluster, namespace, reason="NoActivator")
                                if e["type"] == "Warning"], timeout=30,
                       message="NoActivator event")
    assert "spec.scaling.scaleToZero.enabled" in warning[0]["message"]
    assert "activator.enabled=true" in warning[0]["message"]
    deployment = get(cluster, namespace, "deployment", "chat")
    assert deployment is not None and deployment["spec"]["replicas"] == 1
    # The Service keeps its selector: no activator to point a slice at.
    assert get(cluster, namespace, "service", "chat")["spec"].get("selector")


def test_gpu_type_without_nodes_is_unschedulable(
    cluster: ClusterHandle, operator: OperatorProcess, namespace: str
) -> None:
    # The local cluster has no H200 nodes: the scheduler cannot place the replicas.
    apply(cluster, namespace, lmd(accelerator={"type": "nvidia-h200"}))
    body = wait_for(lambda: (b := get(cluster, namespace, "lmd", "chat"))
                    and condition(b, "Schedulable").get("status") == "False" and b,
                    timeout=60, message="Schedulable=False")
    schedulable = condition(body, "Schedulable")
    assert schedulable["reason"] == "Unschedulable"
    assert "didn't match Pod's node affinity/selector" in schedulable["message"]
    assert condition(body, "Ready")["status"] == "False"


def test_scale_subresource_drives_replicas_when_scaling_is_disabled(
    cluster: ClusterHandle, operator: OperatorProcess, namespace: str
) -> None:
    apply(cluster, namespace, lmd(scaling={"enabled": False, "minReplicas": 1,
                                           "maxReplicas": 4}))
    wait_for(lambda: get(cluster, namespace, "deployment", "chat"), timeout=30,
             message="Deployment created")
    cluster.kubectl("scale", "lmd/chat", "--replicas=3", "-n", namespace)
    wait_for(lambda: (d := get(cluster, namespace, "deployment", "chat"))
             and d["spec"]["replicas"] == 3, timeout=30, message="Deployment at 3 replicas")
    body = wait_for(lambda: (b := get(cluster, namespace, "lmd", "chat"))
                    and b["status"].get("readyReplicas") == 3 and b, timeout=60,
                    message="3 ready replicas in status")
    assert body["status"]["desiredReplicas"] == 3
    assert condition(body, "MetricsAvailable")["reason"] == "ScalingDisabled"


def test_kubectl_shows_printer_columns_and_explains_fields(
    cluster: ClusterHandle, operator: OperatorProcess, namespace: str
) -> None:
    apply(cluster, namespace, lmd())
    ready_lmd(cluster, namespace)
    header, row = cluster.kubectl("get", "lmd", "-n", namespace).stdout.splitlines()[:2]
    assert header.split() == ["NAME", "MODEL", "GPU", "READY", "DESIRED", "QUEUE", "URL",
                              "AGE"]
    assert row.split()[:5] == ["chat", "meta-llama/Llama-3.1-8B-Instruct", "nvidia-h100-80gb",
                               "2", "2"]
    assert "http://chat.example.com" in row.split()
    explained = cluster.kubectl("explain", "lmd.spec.scaling").stdout
    assert "minReplicas" in explained and "DESCRIPTION" in explained
    plan = cluster.kubectl("explain", "lmd.status.capacityPlan").stdout
    assert "gpusPerReplica" in plan and "kvCapacityTokens" in plan and "DESCRIPTION" in plan
    memory = cluster.kubectl("explain", "lmd.status.capacityPlan.memoryPerGpu.kvCacheBytes")
    assert "<integer>" in memory.stdout
