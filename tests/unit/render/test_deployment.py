"""The Deployment: GPUs, placement, probes, volumes, graceful drain, and no `replicas`."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.render.builders import planned

from lmscale.render import deployment, render_deployment, render_replicas


def _rendered(spec_patch: dict[str, Any] | None = None) -> dict[str, Any]:
    resource, plan = planned(spec_patch)
    return render_deployment(resource, plan)


def _pod(manifest: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = manifest["spec"]["template"]["spec"]
    return pod


def _container(manifest: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = _pod(manifest)["containers"]
    (container,) = containers
    return container


def test_no_replicas_in_the_template_manifest() -> None:
    """The scaler's field manager owns replicas; the template apply must never reset them."""
    assert "replicas" not in _rendered()["spec"]


def test_render_replicas_is_only_replicas() -> None:
    assert render_replicas("chat", "team-a", 3) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "chat", "namespace": "team-a"},
        "spec": {"replicas": 3},
    }
    with pytest.raises(ValueError, match="at least 0"):
        render_replicas("chat", "team-a", -1)


GPUS = [
    pytest.param({}, "1", "NVIDIA-H100-80GB-HBM3", id="8b-one-h100"),
    pytest.param(
        {"model": {"architecture": "llama-3.1-70b"}, "accelerator": {"gpusPerReplica": 4}},
        "4", "NVIDIA-H100-80GB-HBM3", id="70b-four-h100",
    ),
    pytest.param(
        {"model": {"architecture": "llama-3.2-1b"}, "accelerator": {"type": "nvidia-l4"}},
        "1", "NVIDIA-L4", id="1b-one-l4",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("spec_patch", "gpus", "product"), GPUS)
def test_gpus_and_placement(spec_patch: dict[str, Any], gpus: str, product: str) -> None:
    manifest = _rendered(spec_patch)
    resources = _container(manifest)["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == gpus
    assert resources["requests"]["nvidia.com/gpu"] == gpus
    assert _pod(manifest)["nodeSelector"] == {"nvidia.com/gpu.product": product}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in _pod(
        manifest
    )["tolerations"]
    assert f"--tensor-parallel-size {gpus}" in " ".join(_container(manifest)["args"])


def test_user_resources_are_kept_beside_the_gpus() -> None:
    manifest = _rendered({"engine": {"resources": {"requests": {"cpu": 8, "memory": "64Gi"},
                                                   "limits": {"memory": "96Gi"}}}})  # fmt: skip
    assert _container(manifest)["resources"] == {
        "requests": {"cpu": 8, "memory": "64Gi", "nvidia.com/gpu": "1"},
        "limits": {"memory": "96Gi", "nvidia.com/gpu": "1"},
    }


def test_command_line_comes_from_spec_and_plan() -> None:
    container = _container(_rendered({"model": {"maxContextLength": 8192}}))
    assert container["command"] == ["vllm", "serve"]
    assert container["args"][:9] == [
        "meta-llama/Llama-3.1-8B-Instruct", "--tensor-parallel-size", "1",
        "--max-model-len", "8192", "--served-model-name", "meta-llama/Llama-3.1-8B-Instruct",
        "--port", "8000",
    ]  # fmt: skip
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert container["image"] == "vllm/vllm-openai:v0.11.0"


def test_user_image_and_args() -> None:
    container = _container(
        _rendered(
            {"engine": {"image": "registry.local/vllm:dev", "args": ["--enable-prefix-caching"]}}
        )
    )
    assert container["image"] == "registry.local/vllm:dev"
    assert container["args"][-1] == "--enable-prefix-caching"


def test_probes_allow_a_long_load() -> None:
    manifest = _rendered({"model": {"architecture": "llama-3.1-70b"}})
    container = _container(manifest)
    startup = container["startupProbe"]
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    assert budget >= 600, "a model server takes minutes to load"
    assert startup["httpGet"] == {"path": "/health", "port": "http"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    live = container["livenessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] >= 60
    assert manifest["spec"]["progressDeadlineSeconds"] > budget


def test_rolling_update_never_drops_capacity() -> None:
    assert _rendered()["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }


SHM = [
    pytest.param({}, False, id="single-gpu"),
    pytest.param(
        {"model": {"architecture": "llama-3.1-70b"}, "accelerator": {"gpusPerReplica": 4}},
        True, id="tensor-parallel",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("spec_patch", "expected"), SHM)
def test_shared_memory_for_multi_gpu(spec_patch: dict[str, Any], expected: bool) -> None:
    manifest = _rendered(spec_patch)
    volumes = {v["name"]: v for v in _pod(manifest)["volumes"]}
    mounts = {m["name"]: m for m in _container(manifest)["volumeMounts"]}
    assert ("dshm" in volumes) is expected
    if expected:
        assert volumes["dshm"] == {"name": "dshm", "emptyDir": {"medium": "Memory"}}
        assert mounts["dshm"]["mountPath"] == "/dev/shm"


CACHES = [
    pytest.param({"size": "200Gi"}, "chat-model-cache", "/models", id="created-claim"),
    pytest.param({"claimName": "weights", "mountPath": "/cache"}, "weights", "/cache",
                 id="existing"),
]  # fmt: skip


@pytest.mark.parametrize(("cache", "claim", "mount_path"), CACHES)
def test_model_cache_volume(cache: dict[str, Any], claim: str, mount_path: str) -> None:
    manifest = _rendered({"modelCache": cache})
    volumes = {v["name"]: v for v in _pod(manifest)["volumes"]}
    assert volumes["model-cache"]["persistentVolumeClaim"] == {"claimName": claim}
    mounts = {m["name"]: m for m in _container(manifest)["volumeMounts"]}
    assert mounts["model-cache"]["mountPath"] == mount_path
    assert {"name": "HF_HOME", "value": mount_path} in _container(manifest)["env"]


def test_user_env_overrides_lmscales() -> None:
    manifest = _rendered({
        "modelCache": {"size": "100Gi"},
        "engine": {"env": [{"name": "HF_HOME", "value": "/elsewhere"},
                           {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {
                               "name": "hf", "key": "token"}}}]},
    })  # fmt: skip
    assert _container(manifest)["env"] == [
        {"name": "HF_HOME", "value": "/elsewhere"},
        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}},
    ]


SOURCES = [
    pytest.param(None, "meta-llama/Llama-3.1-8B-Instruct", id="hub-by-name"),
    pytest.param("hf://meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-8B", id="hub-uri"),
    pytest.param("pvc://weights/llama/8b", "/model-source/llama/8b", id="pvc"),
    pytest.param("s3://bucket/llama", "s3://bucket/llama", id="s3"),
]  # fmt: skip


@pytest.mark.parametrize(("uri", "path"), SOURCES)
def test_model_source(uri: str | None, path: str) -> None:
    spec_patch = {"model": {"source": {"uri": uri}}} if uri else {}
    manifest = _rendered(spec_patch)
    assert _container(manifest)["args"][0] == path
    volumes = {v["name"]: v for v in _pod(manifest)["volumes"]}
    if uri and uri.startswith("pvc://"):
        assert volumes["model-source"]["persistentVolumeClaim"] == {
            "claimName": "weights",
            "readOnly": True,
        }
    else:
        assert "model-source" not in volumes


def test_graceful_termination_covers_in_flight_generations() -> None:
    """preStop keeps serving started streams after the pod leaves the endpoints."""
    resource, plan = planned({"slo": {"tpotP95Ms": 50, "meanOutputTokens": 500}})
    manifest = render_deployment(resource, plan)
    pre_stop = _container(manifest)["lifecycle"]["preStop"]["sleep"]["seconds"]
    # four mean-length outputs at the TPOT objective, plus endpoint propagation
    assert pre_stop >= 4 * 500 * 0.050
    assert _pod(manifest)["terminationGracePeriodSeconds"] > pre_stop


DRAIN = [
    pytest.param(1, 1, deployment.MIN_DRAIN_SECONDS, id="floor"),
    pytest.param(10_000, 1000, deployment.MAX_DRAIN_SECONDS, id="ceiling"),
    pytest.param(256, 100, 113, id="defaults"),
]  # fmt: skip


@pytest.mark.parametrize(("output_tokens", "tpot_ms", "expected"), DRAIN)
def test_drain_seconds_bounds(output_tokens: int, tpot_ms: int, expected: int) -> None:
    resource, _ = planned({"slo": {"meanOutputTokens": output_tokens, "tpotP95Ms": tpot_ms}})
    assert deployment.drain_seconds(resource.spec) == expected


def test_service_links_are_off() -> None:
    """A Service named vllm would inject VLLM_PORT=tcp://..., which breaks vLLM."""
    assert _pod(_rendered())["enableServiceLinks"] is False


def test_manifest_has_no_shared_mutable_parts() -> None:
    """Callers add owner references and patch in place; nothing may alias between parts."""
    container = _container(_rendered())
    probes = [container[p]["httpGet"] for p in ("startupProbe", "readinessProbe", "livenessProbe")]
    assert len({id(p) for p in probes}) == 3


def test_user_tolerations_follow_the_gpu_toleration() -> None:
    spot = {"key": "spot", "operator": "Exists", "effect": "NoSchedule"}
    tolerations = _pod(_rendered({"engine": {"tolerations": [spot]}}))["tolerations"]
    assert tolerations == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}, spot]
