"""routing.mode inferencePool: an InferencePool over the model's pods and its endpoint picker.

The Gateway asks the endpoint picker (EPP, an ext-proc gRPC server) which pod of the pool
takes each request; the picker scrapes every pod's queue length and KV-cache use from the
engine's /metrics and scores them, so a long prompt does not land behind a full queue. The
picker needs a Deployment, a Service the pool names, a ServiceAccount allowed to read the pool
and the pods, and its plugin configuration. The image defaults to llm-d's inference
scheduler (as KServe's LLMInferenceService does); the spec or the operator's setting can
name another build of the Inference Extension's picker.
"""

from __future__ import annotations

from typing import Any

from lmscale.api import EngineKind, LanguageModelDeployment, RoutingMode
from lmscale.render import meta

API_VERSION = "inference.networking.k8s.io/v1"
DEFAULT_IMAGE = "ghcr.io/llm-d/llm-d-inference-scheduler:v0.7.0"
SUFFIX = "-epp"
GRPC_PORT = 9002
HEALTH_PORT = 9003
METRICS_PORT = 9090
CONFIG_FILE = "plugins.yaml"
COMPONENT = "endpoint-picker"

# Schedule on queue length and KV-cache use (the engine series the picker reads), and on
# prefix-cache affinity (requests sharing a prompt prefix go where it is cached).
PLUGINS = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: prefix-cache-scorer
    weight: 3
"""

# The picker's defaults are vLLM's series; the others name theirs (TGI exports no KV-cache
# fraction, so that scorer sees none and queue length decides).
_ENGINE_METRICS = {
    EngineKind.VLLM: {"total-queued-requests-metric": "vllm:num_requests_waiting",
                      "kv-cache-usage-percentage-metric": "vllm:kv_cache_usage_perc"},
    EngineKind.SGLANG: {"total-queued-requests-metric": "sglang:num_queue_reqs",
                        "kv-cache-usage-percentage-metric": "sglang:token_usage",
                        "lora-info-metric": ""},
    EngineKind.TGI: {"total-queued-requests-metric": "tgi_queue_size",
                     "kv-cache-usage-percentage-metric": "", "lora-info-metric": ""},
}


def picker_name(name: str) -> str:
    return name + SUFFIX


def _metadata(lmd: LanguageModelDeployment) -> dict[str, Any]:
    out = meta.metadata(lmd, name=picker_name(lmd.name))
    out["labels"] = {**out["labels"], "app.kubernetes.io/component": COMPONENT}
    return out


def _picker_selector(lmd: LanguageModelDeployment) -> dict[str, str]:
    # not the model's selector label: the pool must never select the picker's own pods
    return {"lmscale.dev/endpoint-picker": lmd.name}


def render_inference_pool(lmd: LanguageModelDeployment) -> dict[str, Any] | None:
    """The InferencePool (named as the model), or None outside routing.mode inferencePool."""
    if lmd.spec.routing.mode is not RoutingMode.INFERENCE_POOL:
        return None
    return {
        "apiVersion": API_VERSION, "kind": "InferencePool", "metadata": meta.metadata(lmd),
        "spec": {
            "selector": {"matchLabels": meta.selector_labels(lmd.name)},
            "targetPorts": [{"number": lmd.spec.engine.port}],
            "endpointPickerRef": {"group": "", "kind": "Service",
                                  "name": picker_name(lmd.name),
                                  "port": {"number": GRPC_PORT}, "failureMode": "FailClose"},
        },
    }


def _args(lmd: LanguageModelDeployment) -> list[str]:
    args = ["--pool-name", lmd.name, "--pool-namespace", lmd.namespace,
            "--config-file", f"/config/{CONFIG_FILE}", "--zap-encoder", "json",
            "--grpc-port", str(GRPC_PORT), "--grpc-health-port", str(HEALTH_PORT),
            "--metrics-port", str(METRICS_PORT), "--metrics-endpoint-auth=false",
            "--tracing=false"]
    for flag, value in _ENGINE_METRICS[lmd.spec.engine.kind].items():
        args += [f"--{flag}", value]
    return args


def _deployment(lmd: LanguageModelDeployment, image: str) -> dict[str, Any]:
    picker = lmd.spec.routing.endpoint_picker
    health = "inference-extension"
    pod_labels = {**_metadata(lmd)["labels"], **_picker_selector(lmd)}
    pod_labels.pop(meta.DEPLOYMENT_LABEL)  # the model's Service and pool select on it
    container = {
        "name": "epp", "image": picker.image or image, "args": _args(lmd),
        "ports": [{"name": "grpc", "containerPort": GRPC_PORT},
                  {"name": "grpc-health", "containerPort": HEALTH_PORT},
                  {"name": "metrics", "containerPort": METRICS_PORT}],
        "env": [{"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath":
                                                                 "metadata.namespace"}}},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "readinessProbe": {"grpc": {"port": HEALTH_PORT, "service": health},
                           "periodSeconds": 2},
        "livenessProbe": {"grpc": {"port": HEALTH_PORT, "service": health},
                          "initialDelaySeconds": 5, "periodSeconds": 10},
        "volumeMounts": [{"name": "config", "mountPath": "/config", "readOnly": True}],
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                            "capabilities": {"drop": ["ALL"]}},
    }
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _metadata(lmd),
        "spec": {
            "replicas": picker.replicas,
            "selector": {"matchLabels": _picker_selector(lmd)},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {"serviceAccountName": picker_name(lmd.name),
                         "terminationGracePeriodSeconds": 130,
                         "containers": [container],
                         "volumes": [{"name": "config",
                                      "configMap": {"name": picker_name(lmd.name)}}]},
            },
        },
    }


def render_endpoint_picker(lmd: LanguageModelDeployment, *,
                           image: str = DEFAULT_IMAGE) -> list[dict[str, Any]]:
    """ConfigMap, ServiceAccount, Role, RoleBinding, Deployment and Service of the picker
    (all named `<model>-epp`); empty outside routing.mode inferencePool."""
    if lmd.spec.routing.mode is not RoutingMode.INFERENCE_POOL:
        return []
    name = picker_name(lmd.name)
    rules = [
        {"apiGroups": ["inference.networking.k8s.io"], "resources": ["inferencepools"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["inference.networking.x-k8s.io"],
         "resources": ["inferenceobjectives", "inferencemodelrewrites"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    ]
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _metadata(lmd),
         "data": {CONFIG_FILE: PLUGINS}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _metadata(lmd)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _metadata(lmd),
         "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": _metadata(lmd),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": lmd.namespace}]},
        _deployment(lmd, image),
        {"apiVersion": "v1", "kind": "Service", "metadata": _metadata(lmd),
         "spec": {"type": "ClusterIP", "selector": _picker_selector(lmd),
                  "ports": [{"name": "grpc-ext-proc", "port": GRPC_PORT, "protocol": "TCP",
                             "appProtocol": "http2"},
                            {"name": "http-metrics", "port": METRICS_PORT, "protocol": "TCP"}]}},
    ]
