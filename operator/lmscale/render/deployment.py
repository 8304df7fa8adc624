"""The Deployment that runs the model replicas, and the separate `replicas` apply.

The template manifest never carries `spec.replicas`: the scaler owns that field under its
own server-side-apply field manager (`render_replicas`), so re-applying the template never
resets the replica count, and Argo CD, which never sees the Deployment, cannot fight over it.
"""

from __future__ import annotations

import math
from typing import Any

from lmscale.api import LanguageModelDeployment, LanguageModelDeploymentSpec
from lmscale.api.engine import GPU_RESOURCE
from lmscale.planner.plan import CapacityPlan
from lmscale.render import engines, meta

CONTAINER = "engine"
PORT_NAME = "http"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
SHM_PATH = "/dev/shm"

# Seconds for a pod's removal from Service endpoints to reach every proxy and ingress
# controller; requests keep arriving until then.
ENDPOINT_PROPAGATION_SECONDS = 10
# A long generation runs this many times the mean output length (chat traces have long tails).
LONG_OUTPUT_FACTOR = 4
MIN_DRAIN_SECONDS, MAX_DRAIN_SECONDS = 30, 900
# After the drain, the engine's own shutdown (freeing GPU memory, NCCL teardown).
SHUTDOWN_SECONDS = 30
# Startup probe budget: twice the planner's cold-start estimate plus slack, at least 10 min.
MIN_STARTUP_SECONDS, MAX_STARTUP_SECONDS, STARTUP_SLACK_SECONDS = 600, 6 * 3600, 300
STARTUP_PERIOD_SECONDS = 10


def drain_seconds(spec: LanguageModelDeploymentSpec) -> int:
    """How long a replica being removed keeps serving the generations it has started.

    preStop runs before SIGTERM and the pod is already out of the endpoints, so a sleep here
    lets in-flight streams finish instead of being cut (a known complaint with scale-down).
    """
    generation = LONG_OUTPUT_FACTOR * spec.slo.mean_output_tokens * spec.slo.tpot_p95_ms / 1000
    seconds = math.ceil(ENDPOINT_PROPAGATION_SECONDS + generation)
    return max(MIN_DRAIN_SECONDS, min(MAX_DRAIN_SECONDS, seconds))


def startup_seconds(plan: CapacityPlan) -> int:
    """How long a replica may take to load the model before the kubelet restarts it."""
    seconds = math.ceil(2 * plan.cold_start_seconds) + STARTUP_SLACK_SECONDS
    return max(MIN_STARTUP_SECONDS, min(MAX_STARTUP_SECONDS, seconds))


def model_location(
    spec: LanguageModelDeploymentSpec,
) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """What the engine loads, with the volume and mount that make it reachable, if any."""
    source = spec.model.source
    if source is None:
        return spec.model.name, [], []
    scheme, _, rest = source.uri.partition("://")
    if scheme == "hf":
        return rest, [], []
    if scheme == "pvc":
        claim, _, path = rest.partition("/")
        volume = {
            "name": "model-source",
            "persistentVolumeClaim": {"claimName": claim, "readOnly": True},
        }
        mount = {"name": "model-source", "mountPath": engines.MODEL_SOURCE_MOUNT, "readOnly": True}
        return f"{engines.MODEL_SOURCE_MOUNT}/{path}".rstrip("/"), [volume], [mount]
    return source.uri, [], []  # s3://, streamed by the engine


def _env(lmd: LanguageModelDeployment) -> list[dict[str, Any]]:
    """lmscale's variables, then the user's; a user variable of the same name wins."""
    spec = lmd.spec
    own: list[dict[str, Any]] = []
    if spec.model_cache is not None:
        own.append({"name": "HF_HOME", "value": spec.model_cache.mount_path})
    user = [e.to_dict() for e in spec.engine.env]
    names = {e["name"] for e in user}
    return [e for e in own if e["name"] not in names] + user


def _resources(spec: LanguageModelDeploymentSpec, gpus: int) -> dict[str, Any]:
    wanted = spec.engine.resources
    return {
        "requests": {**(wanted.requests or {}), GPU_RESOURCE: str(gpus)},
        "limits": {**(wanted.limits or {}), GPU_RESOURCE: str(gpus)},
    }


def _probes(profile: engines.Engine, plan: CapacityPlan) -> dict[str, Any]:
    """Startup allows a load of many minutes; after it, readiness gates traffic quickly and
    liveness restarts only an engine that stopped answering for a minute. Each probe's
    timeout is the longest answer its path may legitimately take."""

    def http(probe: engines.Probe) -> dict[str, Any]:
        return {"httpGet": {"path": probe.path, "port": PORT_NAME},
                "timeoutSeconds": probe.timeout_seconds}

    health, ready = profile.health, profile.readiness
    return {
        "startupProbe": {
            **http(health),
            "periodSeconds": max(STARTUP_PERIOD_SECONDS, health.timeout_seconds),
            "failureThreshold": math.ceil(
                startup_seconds(plan) / max(STARTUP_PERIOD_SECONDS, health.timeout_seconds)
            ),
        },
        "readinessProbe": {**http(ready), "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {
            **http(health),
            "periodSeconds": max(15, health.timeout_seconds + 5),
            "timeoutSeconds": max(10, health.timeout_seconds),
            "failureThreshold": 4,
        },
    }  # fmt: skip


def _volumes(
    lmd: LanguageModelDeployment,
    plan: CapacityPlan,
    source_volumes: list[dict[str, Any]],
    source_mounts: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Shared memory for tensor-parallel NCCL traffic, the model cache, the model source."""
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    if plan.gpus_per_replica > 1:
        # The container runtime's 64 MiB /dev/shm is too small for NCCL between GPUs.
        volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory"}})
        mounts.append({"name": "dshm", "mountPath": SHM_PATH})
    cache = lmd.spec.model_cache
    if cache is not None:
        claim = cache.claim_name or meta.model_cache_claim_name(lmd.name)
        volumes.append({"name": "model-cache", "persistentVolumeClaim": {"claimName": claim}})
        mounts.append({"name": "model-cache", "mountPath": cache.mount_path})
    return volumes + source_volumes, mounts + source_mounts


def _container(
    lmd: LanguageModelDeployment, plan: CapacityPlan
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    spec = lmd.spec
    profile = engines.engine(spec.engine.kind)
    path, source_volumes, source_mounts = model_location(spec)
    inputs = engines.EngineInputs(
        model_path=path,
        served_name=spec.model.name,
        tensor_parallel=plan.gpus_per_replica,
        max_model_len=plan.context,
        port=spec.engine.port,
        dtype=spec.model.dtype,
        streamed=path.startswith("s3://"),
    )
    volumes, mounts = _volumes(lmd, plan, source_volumes, source_mounts)
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": spec.engine.image or profile.image,
        "command": list(profile.command),
        "args": [*profile.args(inputs), *spec.engine.args],
        "ports": [{"name": PORT_NAME, "containerPort": spec.engine.port, "protocol": "TCP"}],
        "env": _env(lmd),
        "resources": _resources(spec, plan.gpus_per_replica),
        **_probes(profile, plan),
        "lifecycle": {"preStop": {"sleep": {"seconds": drain_seconds(spec)}}},
        "volumeMounts": mounts,
    }
    return container, volumes


def _pod_annotations(spec: LanguageModelDeploymentSpec) -> dict[str, str]:
    """Default container for kubectl, and the common scrape annotations for Prometheus."""
    return {
        **spec.engine.pod_annotations,
        "kubectl.kubernetes.io/default-container": CONTAINER,
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(spec.engine.port),
        "prometheus.io/path": "/metrics",
    }


def render_deployment(lmd: LanguageModelDeployment, plan: CapacityPlan, *,
                      variant: str | None = None) -> dict[str, Any]:
    """The Deployment of `lmd`'s replicas, without `replicas` (the scaler owns that field).

    With `variant` (a fallback GPU type, planned as `plan`), the Deployment of that type:
    named <name>-<type>, its pods labelled with the type on top of the labels the Service
    selects, so the one Service and route reach every type.
    """
    spec = lmd.spec
    container, volumes = _container(lmd, plan)
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "nodeSelector": {GPU_PRODUCT_LABEL: plan.gpu.product_label},
        "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"},
                        *(t.to_dict() for t in spec.engine.tolerations)],
        "terminationGracePeriodSeconds": drain_seconds(spec) + SHUTDOWN_SECONDS,
        # Service links would inject e.g. VLLM_PORT=tcp://... for a Service named "vllm",
        # which vLLM reads as its own setting and fails on.
        "enableServiceLinks": False,
        "volumes": volumes,
    }
    metadata = meta.metadata(lmd)
    selector = meta.selector_labels(lmd.name)
    pod_labels = meta.labels(lmd)
    if variant is not None:
        metadata = meta.metadata(lmd, name=meta.variant_name(lmd.name, variant))
        metadata["labels"][meta.VARIANT_LABEL] = variant
        selector = meta.variant_selector_labels(lmd.name, variant)
        pod_labels[meta.VARIANT_LABEL] = variant
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "selector": {"matchLabels": selector},
            # Never below serving capacity: a new replica must be ready before an old one goes.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "revisionHistoryLimit": 3,
            "progressDeadlineSeconds": startup_seconds(plan) + STARTUP_SLACK_SECONDS,
            "template": {
                "metadata": {"labels": pod_labels, "annotations": _pod_annotations(spec)},
                "spec": pod_spec,
            },
        },
    }


def render_replicas(name: str, namespace: str, replicas: int) -> dict[str, Any]:
    """The scaler's apply body: only `spec.replicas`, under the scaler's field manager."""
    if replicas < 0:
        raise ValueError(f"replicas must be at least 0, not {replicas}")
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas},
    }
