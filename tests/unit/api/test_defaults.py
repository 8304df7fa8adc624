"""Defaults: HPA's behaviour defaults, safe scaling defaults, and the CRD carrying the same."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.api.malformed import valid_body

from lmscale import api
from lmscale.api import crd


def _spec() -> api.LanguageModelDeploymentSpec:
    spec = api.parse_spec(valid_body()["spec"])
    assert isinstance(spec, api.LanguageModelDeploymentSpec)
    return spec


def test_behavior_defaults_are_hpas() -> None:
    """autoscaling/v2 defaults: scale up by 100% or 4 pods per 15 s with no window; scale down
    by 100% per 15 s after a 300 s window; Max policy wins."""
    behavior = _spec().scaling.behavior
    assert behavior.scale_up.stabilization_window_seconds == 0
    assert behavior.scale_down.stabilization_window_seconds == 300
    assert behavior.scale_up.select_policy is api.SelectPolicy.MAX
    assert behavior.scale_down.select_policy is api.SelectPolicy.MAX
    assert [(p.type, p.value, p.period_seconds) for p in behavior.scale_up.policies] == [
        (api.PolicyType.PERCENT, 100, 15),
        (api.PolicyType.PODS, 4, 15),
    ]
    assert [(p.type, p.value, p.period_seconds) for p in behavior.scale_down.policies] == [
        (api.PolicyType.PERCENT, 100, 15)
    ]


DEFAULTS = [
    pytest.param(lambda s: s.scaling.enabled, True, id="scaling-on"),
    pytest.param(lambda s: s.scaling.tolerance, 0.1, id="hpa-tolerance"),
    pytest.param(
        lambda s: s.scaling.on_missing_metrics.action, api.MissingMetricsAction.HOLD,
        id="hold-on-missing-metrics",
    ),
    pytest.param(lambda s: s.scaling.scale_to_zero.enabled, False, id="no-scale-to-zero"),
    pytest.param(lambda s: s.accelerator.gpus_per_replica, "auto", id="auto-gpus"),
    pytest.param(lambda s: s.engine.kind, api.EngineKind.VLLM, id="vllm"),
    pytest.param(lambda s: s.model.dtype, api.Dtype.BFLOAT16, id="bfloat16"),
    pytest.param(lambda s: s.ingress.enabled, False, id="no-ingress"),
    pytest.param(lambda s: s.ingress.paths, ["/"], id="root-path"),
    pytest.param(lambda s: s.service.type, api.ServiceType.CLUSTER_IP, id="cluster-ip"),
    pytest.param(lambda s: s.model_cache, None, id="no-cache"),
]  # fmt: skip


@pytest.mark.parametrize(("get", "expected"), DEFAULTS)
def test_default(get: Any, expected: Any) -> None:
    assert get(_spec()) == expected


def _apply_crd_defaults(value: Any, node: dict[str, Any]) -> Any:
    """Structural defaulting as the apiserver does it: set missing defaults, then recurse."""
    if isinstance(value, dict) and "properties" in node:
        for key, child in node["properties"].items():
            if key not in value and "default" in child:
                value[key] = child["default"]
        for key in list(value):
            if key in node["properties"]:
                value[key] = _apply_crd_defaults(value[key], node["properties"][key])
    elif isinstance(value, list) and "items" in node:
        return [_apply_crd_defaults(item, node["items"]) for item in value]
    return value


def _without_empty_collections(value: Any) -> Any:
    """The CRD leaves empty lists and maps out rather than store `[]` in every object."""
    if isinstance(value, dict):
        return {k: _without_empty_collections(v) for k, v in value.items() if v not in ([], {})}
    return value


def test_crd_defaults_equal_the_model_defaults() -> None:
    """What the apiserver stores for a minimal resource is what pydantic fills in."""
    schema = crd.openapi_schema()["properties"]["spec"]
    stored = _apply_crd_defaults(valid_body()["spec"], schema)
    assert _without_empty_collections(stored) == _without_empty_collections(_spec().to_dict())
