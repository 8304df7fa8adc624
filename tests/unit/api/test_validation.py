"""The models reject what the CRD rejects, at the same field, and accept what it accepts."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from tests.unit.api.malformed import DELETE, MALFORMED, SHAPE, patched, valid_body

from lmscale import api
from lmscale.api import resource, schema


def _errors(spec_patch: dict[str, Any]) -> list[resource.FieldError]:
    body = patched(valid_body(), {"spec": spec_patch})
    result = api.parse_spec(body["spec"])
    assert isinstance(result, list), "the malformed spec was accepted"
    return result


def _names(path: str, expected: str) -> bool:
    """An error at `expected`, or inside it (a union's member, as `size.str`)."""
    return path == expected or path.startswith((expected + ".", expected + "["))


@pytest.mark.parametrize(("spec_patch", "field"), MALFORMED)
def test_malformed_spec_is_rejected_at_the_field(spec_patch: dict[str, Any], field: str) -> None:
    errors = _errors(spec_patch)
    assert any(_names(e.path, field) for e in errors), [str(e) for e in errors]


def _all_rules() -> list[tuple[str, schema.Rule]]:
    models = [
        cls
        for module in (api.model, api.engine, api.scaling, api.networking, api.spec)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, schema.Schema) and cls.__module__ == module.__name__
    ]
    return [(f"{cls.__name__}: {rule.cel}", rule) for cls in models for rule in cls.rules]


def test_every_cross_field_rule_has_a_malformed_case() -> None:
    """Each CEL rule is exercised against the apiserver by at least one case."""
    patches: list[dict[str, Any]] = [param.values[0] for param in MALFORMED]  # type: ignore[misc]
    messages = {e.message for spec_patch in patches for e in _errors(spec_patch)}
    untested = [name for name, rule in _all_rules() if rule.message not in messages]
    assert not untested


VALID = [
    pytest.param({}, id="minimal"),
    pytest.param({"accelerator": {"gpusPerReplica": 4}}, id="explicit-gpus"),
    pytest.param({"accelerator": {"gpusPerReplica": "auto"}}, id="auto-gpus"),
    pytest.param(
        {"model": {"architecture": DELETE, "shape": SHAPE, "maxContextLength": 8192}},
        id="inline-shape",
    ),
    pytest.param(
        {
            "ingress": {
                "enabled": True,
                "host": "chat.example.com",
                "className": "nginx",
                "tlsSecretName": "chat-tls",
                "loadBalancing": "round_robin",
            }
        },
        id="ingress-with-tls",
    ),  # fmt: skip
    pytest.param(
        {"ingress": {"enabled": True, "host": "*.models.example.com"}}, id="wildcard-host"
    ),
    pytest.param({"scaling": {"minReplicas": 2, "maxReplicas": 2}}, id="fixed-range"),
    pytest.param(
        {"accelerator": {"fallbacks": [{"type": "nvidia-a100-80gb"},
                                       {"type": "nvidia-l40s", "gpusPerReplica": 2,
                                        "maxReplicas": 3}],
                         "strategy": "cheapest", "fallbackAfterSeconds": 30}},
        id="fallbacks",
    ),
    pytest.param(
        {"scaling": {"onMissingMetrics": {"action": "fallback", "fallbackReplicas": 2}}},
        id="fallback-within-bounds",
    ),
    pytest.param({"scaling": {"enabled": False}, "replicas": 0}, id="manual-zero"),
    pytest.param({"model": {"source": {"uri": "pvc://weights/llama/8b"}}}, id="pvc-source"),
    pytest.param({"model": {"source": {"uri": "s3://bucket/llama"}}}, id="s3-source-vllm"),
    pytest.param(
        {
            "engine": {
                "kind": "tgi",
                "image": "ghcr.io/huggingface/text-generation-inference:3.3.6",
                "env": [
                    {
                        "name": "HF_TOKEN",
                        "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}},
                    }
                ],
                "resources": {"requests": {"cpu": 8, "memory": "64Gi"}},
            }
        },
        id="tgi-with-secret-env",
    ),  # fmt: skip
    pytest.param({"modelCache": {"size": "200Gi", "storageClassName": "fast"}}, id="new-cache"),
    pytest.param({"modelCache": {"claimName": "weights"}}, id="existing-cache"),
]


@pytest.mark.parametrize("spec_patch", VALID)
def test_valid_spec_is_accepted(spec_patch: dict[str, Any]) -> None:
    body = patched(valid_body(), {"spec": spec_patch})
    result = api.parse_spec(body["spec"])
    assert not isinstance(result, list), [str(e) for e in result]


def test_unknown_fields_are_rejected() -> None:
    """A typo must not silently do nothing (kubectl's strict field validation agrees)."""
    errors = _errors({"scaling": {"maxReplica": 3}})
    assert [e.path for e in errors] == ["spec.scaling.maxReplica"]


def test_strings_are_not_coerced_to_numbers_or_booleans() -> None:
    errors = _errors({"scaling": {"enabled": "true", "maxReplicas": "3"}})
    assert {e.path for e in errors} == {"spec.scaling.enabled", "spec.scaling.maxReplicas"}


def test_several_broken_rules_are_all_reported() -> None:
    errors = _errors({"ingress": {"enabled": True, "tlsSecretName": "tls"}})
    assert [e.path for e in errors] == ["spec.ingress.host", "spec.ingress.host"]
    assert len({e.message for e in errors}) == 2


def test_whole_resource_parses_with_status() -> None:
    body = valid_body()
    body["metadata"].update(namespace="team-a", uid="1234", generation=3)
    body["status"] = {
        "observedGeneration": 3,
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "Available", "message": "2 of 2",
             "lastTransitionTime": "2026-01-02T03:04:05Z"},
        ],
        "capacityPlan": {"gpusPerReplica": 1, "somethingNewer": {"nested": True}},
        "somethingNewer": 1,
    }  # fmt: skip
    lmd = api.LanguageModelDeployment.model_validate(body)
    assert (lmd.name, lmd.namespace) == ("chat", "team-a")
    assert lmd.status is not None
    assert lmd.status.conditions[0].type is api.ConditionType.READY
    assert lmd.status.capacity_plan is not None
    assert lmd.status.capacity_plan.gpus_per_replica == 1


def test_spec_round_trips_through_the_wire_form() -> None:
    spec = api.parse_spec(valid_body()["spec"])
    assert isinstance(spec, api.LanguageModelDeploymentSpec)
    assert api.LanguageModelDeploymentSpec.model_validate(spec.to_dict()) == spec
    assert "gpusPerReplica" in spec.to_dict()["accelerator"]
