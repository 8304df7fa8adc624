"""Malformed LanguageModelDeployments, shared by the model tests and the apiserver tests.

Each case patches a valid resource and names the field the error must point at, as the
apiserver writes it (`spec.scaling.minReplicas`, `spec.engine.env[0].valueFrom`). The unit
tests check that pydantic rejects each case at that path; tests/integration checks that the
apiserver, through the generated CRD (OpenAPI bounds and CEL rules), rejects it there too.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lmscale.api import API_VERSION, KIND

DELETE = object()  # a patch value that removes the key


def valid_body(name: str = "chat") -> dict[str, Any]:
    """A minimal valid resource: everything else comes from defaults."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name},
        "spec": {
            "model": {"name": "meta-llama/Llama-3.1-8B-Instruct", "architecture": "llama-3.1-8b"},
            "accelerator": {"type": "nvidia-h100-80gb"},
        },
    }


def patched(body: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`body` with `patch` merged in: mappings merge, other values replace, DELETE removes."""
    result = copy.deepcopy(body)
    for key, value in patch.items():
        if value is DELETE:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = patched(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


SHAPE = {
    "layers": 32, "hiddenSize": 4096, "attentionHeads": 32, "kvHeads": 8,
    "ffnSize": 14336, "vocabSize": 128256, "maxContextLength": 8192,
}  # fmt: skip

# (spec patch, field the error names)
MALFORMED = [
    pytest.param(
        {"scaling": {"minReplicas": 5, "maxReplicas": 2}},
        "spec.scaling.minReplicas",
        id="min-replicas-above-max",
    ),
    pytest.param(
        {"accelerator": {"gpusPerReplica": 3}},
        "spec.accelerator.gpusPerReplica",
        id="gpus-per-replica-not-a-power-of-two",
    ),
    pytest.param(
        {"accelerator": {"gpusPerReplica": 16}},
        "spec.accelerator.gpusPerReplica",
        id="gpus-per-replica-beyond-a-node",
    ),
    pytest.param(
        {"accelerator": {"gpusPerReplica": "many"}},
        "spec.accelerator.gpusPerReplica",
        id="gpus-per-replica-neither-auto-nor-number",
    ),
    pytest.param(
        {"accelerator": {"fallbacks": [{"type": "nvidia-h100-80gb"}]}},
        "spec.accelerator.fallbacks",
        id="fallback-repeats-the-primary-type",
    ),
    pytest.param(
        {"accelerator": {"fallbacks": [{"type": "nvidia-a100-80gb"},
                                       {"type": "nvidia-a100-80gb"}]}},
        "spec.accelerator.fallbacks",
        id="fallback-type-listed-twice",
    ),
    pytest.param(
        {"accelerator": {"fallbacks": [{"type": "nvidia-a100-80gb", "gpusPerReplica": 3}]}},
        "spec.accelerator.fallbacks[0].gpusPerReplica",
        id="fallback-gpus-per-replica-not-a-power-of-two",
    ),
    pytest.param(
        {"accelerator": {"fallbacks": [{"type": f"nvidia-{i}"} for i in range(5)]}},
        "spec.accelerator.fallbacks",
        id="too-many-fallbacks",
    ),
    pytest.param(
        {"accelerator": {"strategy": "fastest"}},
        "spec.accelerator.strategy",
        id="unknown-strategy",
    ),
    pytest.param(
        {"ingress": {"enabled": True}},
        "spec.ingress.host",
        id="ingress-enabled-without-host",
    ),
    pytest.param(
        {"ingress": {"tlsSecretName": "chat-tls"}},
        "spec.ingress.host",
        id="tls-secret-without-host",
    ),
    pytest.param(
        {
            "ingress": {
                "enabled": True,
                "host": "chat.example.com",
                "className": "nginx",
                "loadBalancing": "least_request",
            }
        },
        "spec.ingress.loadBalancing",
        id="nginx-cannot-least-request",
    ),  # fmt: skip
    pytest.param(
        {
            "ingress": {
                "enabled": True,
                "host": "chat.example.com",
                "className": "haproxy",
                "loadBalancing": "ewma",
            }
        },
        "spec.ingress.loadBalancing",
        id="haproxy-cannot-ewma",
    ),  # fmt: skip
    pytest.param(
        {"ingress": {"enabled": True, "host": "Chat_Example"}},
        "spec.ingress.host",
        id="ingress-host-not-a-dns-name",
    ),
    pytest.param(
        {"ingress": {"paths": ["v1/chat"]}},
        "spec.ingress.paths[0]",
        id="ingress-path-not-absolute",
    ),
    pytest.param(
        {"routing": {"mode": "gateway"}},
        "spec.routing.parentRefs",
        id="gateway-mode-without-parent-refs",
    ),
    pytest.param(
        {"routing": {"mode": "inferencePool", "parentRefs": []}},
        "spec.routing.parentRefs",
        id="inference-pool-mode-without-parent-refs",
    ),
    pytest.param(
        {"routing": {"mode": "gateway", "parentRefs": [{"name": "gw"}]},
         "ingress": {"enabled": True, "host": "chat.example.com"}},
        "spec.ingress.enabled",
        id="ingress-and-gateway-mode-at-once",
    ),
    pytest.param(
        {"routing": {"mode": "inferencePool", "parentRefs": [{"name": "gw"}],
                     "activator": "always"}},
        "spec.routing.activator",
        id="activator-always-with-an-inference-pool",
    ),
    pytest.param(
        {"routing": {"activator": "sometimes"}},
        "spec.routing.activator",
        id="activator-mode-unknown",
    ),
    pytest.param(
        {"routing": {"mode": "istio"}},
        "spec.routing.mode",
        id="routing-mode-unknown",
    ),
    pytest.param(
        {"routing": {"mode": "gateway", "parentRefs": [{"name": "gw", "namespace": "Bad_NS"}]}},
        "spec.routing.parentRefs[0].namespace",
        id="parent-ref-namespace-not-a-dns-label",
    ),
    pytest.param(
        {"routing": {"requestTimeoutSeconds": 0}},
        "spec.routing.requestTimeoutSeconds",
        id="request-timeout-zero",
    ),
    pytest.param(
        {"model": {"shape": SHAPE}},
        "spec.model",
        id="architecture-and-shape",
    ),
    pytest.param(
        {"model": {"architecture": DELETE}},
        "spec.model",
        id="neither-architecture-nor-shape",
    ),
    pytest.param(
        {"model": {"name": DELETE}},
        "spec.model.name",
        id="model-name-missing",
    ),
    pytest.param(
        {"model": {"dtype": "float32"}},
        "spec.model.dtype",
        id="dtype-unknown",
    ),
    pytest.param(
        {"model": {"architecture": DELETE, "shape": {**SHAPE, "kvHeads": 7}}},
        "spec.model.shape.kvHeads",
        id="kv-heads-do-not-divide-attention-heads",
    ),
    pytest.param(
        {"model": {"architecture": DELETE, "shape": SHAPE, "maxContextLength": 16384}},
        "spec.model.maxContextLength",
        id="context-longer-than-shape-allows",
    ),
    pytest.param(
        {"model": {"source": {"uri": "ftp://models.example.com/llama"}}},
        "spec.model.source.uri",
        id="source-scheme-unknown",
    ),
    pytest.param(
        {"model": {"source": {"uri": "s3://bucket/llama"}}, "engine": {"kind": "tgi"}},
        "spec.model.source.uri",
        id="s3-source-needs-vllm",
    ),
    pytest.param(
        {"engine": {"kind": "triton"}},
        "spec.engine.kind",
        id="engine-kind-unknown",
    ),
    pytest.param(
        {"engine": {"port": 70000}},
        "spec.engine.port",
        id="engine-port-out-of-range",
    ),
    pytest.param(
        {"engine": {"resources": {"limits": {"nvidia.com/gpu": 2}}}},
        "spec.engine.resources.limits",
        id="gpus-set-in-engine-resources",
    ),
    pytest.param(
        {"engine": {"resources": {"requests": {"nvidia.com/gpu": "1"}}}},
        "spec.engine.resources.requests",
        id="gpus-requested-in-engine-resources",
    ),
    pytest.param(
        {
            "engine": {
                "env": [
                    {
                        "name": "HF_TOKEN",
                        "value": "x",
                        "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}},
                    }
                ]
            }
        },
        "spec.engine.env[0].valueFrom",
        id="env-value-and-value-from",
    ),  # fmt: skip
    pytest.param(
        {"engine": {"tolerations": [{"key": "spot", "operator": "Exists", "value": "true"}]}},
        "spec.engine.tolerations[0].value",
        id="toleration-exists-with-value",
    ),
    pytest.param(
        {"engine": {"tolerations": [{"key": "spot", "effect": "Sometimes"}]}},
        "spec.engine.tolerations[0].effect",
        id="toleration-unknown-effect",
    ),
    pytest.param(
        {"accelerator": DELETE},
        "spec.accelerator",
        id="accelerator-missing",
    ),
    pytest.param(
        {"replicas": -1},
        "spec.replicas",
        id="replicas-negative",
    ),
    pytest.param(
        {"replicas": "3"},
        "spec.replicas",
        id="replicas-a-string",
    ),
    pytest.param(
        {"scaling": {"maxReplicas": 0}},
        "spec.scaling.maxReplicas",
        id="max-replicas-zero",
    ),
    pytest.param(
        {"scaling": {"tolerance": 1.5}},
        "spec.scaling.tolerance",
        id="tolerance-above-one",
    ),
    pytest.param(
        {"scaling": {"onMissingMetrics": {"action": "fallback"}}},
        "spec.scaling.onMissingMetrics.fallbackReplicas",
        id="fallback-without-replicas",
    ),
    pytest.param(
        {
            "scaling": {
                "maxReplicas": 4,
                "onMissingMetrics": {"action": "fallback", "fallbackReplicas": 9},
            }
        },
        "spec.scaling.onMissingMetrics.fallbackReplicas",
        id="fallback-replicas-above-max",
    ),  # fmt: skip
    pytest.param(
        {"scaling": {"onMissingMetrics": {"action": "hold", "fallbackReplicas": 2}}},
        "spec.scaling.onMissingMetrics.fallbackReplicas",
        id="fallback-replicas-without-fallback",
    ),
    pytest.param(
        {"scaling": {"onMissingMetrics": {"action": "scaleDown"}}},
        "spec.scaling.onMissingMetrics.action",
        id="missing-metrics-action-unknown",
    ),
    pytest.param(
        {"scaling": {"behavior": {"scaleUp": {"selectPolicy": "Fastest"}}}},
        "spec.scaling.behavior.scaleUp.selectPolicy",
        id="select-policy-unknown",
    ),
    pytest.param(
        {"scaling": {"behavior": {"scaleUp": {"policies": []}}}},
        "spec.scaling.behavior.scaleUp.policies",
        id="scale-up-without-policies",
    ),
    pytest.param(
        {
            "scaling": {
                "behavior": {
                    "scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 3600}]}
                }
            }
        },
        "spec.scaling.behavior.scaleDown.policies[0].periodSeconds",
        id="policy-period-beyond-hpa-limit",
    ),  # fmt: skip
    pytest.param(
        {"scaling": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 7200}}}},
        "spec.scaling.behavior.scaleDown.stabilizationWindowSeconds",
        id="stabilization-window-beyond-an-hour",
    ),
    pytest.param(
        {"scaling": {"scaleToZero": {"enabled": True, "idleSeconds": 5}}},
        "spec.scaling.scaleToZero.idleSeconds",
        id="scale-to-zero-idle-too-short",
    ),
    pytest.param(
        {"slo": {"ttftP95Ms": 0}},
        "spec.slo.ttftP95Ms",
        id="slo-zero-ttft",
    ),
    pytest.param(
        {"service": {"type": "ExternalName"}},
        "spec.service.type",
        id="service-type-unsupported",
    ),
    pytest.param(
        {"modelCache": {"claimName": "weights", "size": "200Gi"}},
        "spec.modelCache",
        id="model-cache-claim-and-size",
    ),
    pytest.param(
        {"modelCache": {"claimName": "weights", "storageClassName": "fast"}},
        "spec.modelCache.storageClassName",
        id="storage-class-for-existing-claim",
    ),
    pytest.param(
        {"modelCache": {"size": "lots"}},
        "spec.modelCache.size",
        id="model-cache-size-not-a-quantity",
    ),
]
