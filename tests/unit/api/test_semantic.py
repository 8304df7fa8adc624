"""What the schema cannot catch: catalog keys, context, fit, engine flags; each names the fix."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from tests.unit.api.malformed import DELETE, SHAPE, patched, valid_body

from lmscale import api
from lmscale.api import semantic
from lmscale.planner import catalog

R = api.ConditionReason


def _spec(spec_patch: dict[str, Any]) -> api.LanguageModelDeploymentSpec:
    spec = api.parse_spec(patched(valid_body(), {"spec": spec_patch})["spec"])
    assert isinstance(spec, api.LanguageModelDeploymentSpec), spec
    return spec


INVALID = [
    pytest.param(
        {"model": {"architecture": "llama-3.1-8"}},
        "spec.model.architecture", R.UNKNOWN_ARCHITECTURE, "did you mean llama-3.1-8b",
        id="unknown-architecture",
    ),
    pytest.param(
        {"accelerator": {"type": "nvidia-h100"}},
        "spec.accelerator.type", R.UNKNOWN_GPU_TYPE, "nvidia-h100-80gb",
        id="unknown-gpu",
    ),
    pytest.param(
        {"model": {"maxContextLength": 200_000}},
        "spec.model.maxContextLength", R.CONTEXT_TOO_LONG, "at most 131072",
        id="context-beyond-the-model",
    ),
    pytest.param(
        {"model": {"architecture": "llama-3.1-405b"}},
        "spec.accelerator.type", R.DOES_NOT_FIT, "smaller model.dtype",
        id="does-not-fit-at-the-largest-degree",
    ),
    pytest.param(
        {"model": {"architecture": "llama-3.1-70b"}, "accelerator": {"gpusPerReplica": 1}},
        "spec.accelerator.gpusPerReplica", R.DOES_NOT_FIT, "gpusPerReplica to 4",
        id="explicit-degree-too-small",
    ),
    pytest.param(
        {"accelerator": {"type": "nvidia-t4"}},
        "spec.model.dtype", R.DOES_NOT_FIT, "float16",
        id="dtype-the-gpu-cannot-run",
    ),
    pytest.param(
        {"engine": {"args": ["--enable-prefix-caching", "--max-model-len=4096"]}},
        "spec.engine.args[1]", R.INVALID_FIELD, "model.maxContextLength",
        id="engine-arg-fights-lmscale",
    ),
    pytest.param(
        {"engine": {"kind": "sglang", "args": ["--host", "127.0.0.1"]}},
        "spec.engine.args[0]", R.INVALID_FIELD, "--host",
        id="engine-arg-host",
    ),
    pytest.param(
        {"model": {"architecture": DELETE, "shape": {**SHAPE, "parameters": 70_000_000_000}}},
        "spec.model.shape.parameters", R.INVALID_FIELD, "describes 8.03B",
        id="shape-disagrees-with-parameters",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("spec_patch", "path", "reason", "hint"), INVALID)
def test_problem_names_field_and_fix(
    spec_patch: dict[str, Any], path: str, reason: api.ConditionReason, hint: str
) -> None:
    resolution = semantic.resolve(_spec(spec_patch))
    assert not resolution.valid
    assert resolution.plan is None
    assert [p.path for p in resolution.problems] == [path]
    (problem,) = resolution.problems
    assert problem.reason is reason
    assert hint in problem.message
    assert resolution.reason is reason
    assert path in resolution.message


VALID = [
    pytest.param({}, 1, 131072, id="8b-on-h100"),
    pytest.param({"model": {"maxContextLength": 8192}}, 1, 8192, id="short-context"),
    pytest.param(
        {"model": {"architecture": "llama-3.1-70b", "maxContextLength": 8192}}, 2, 8192,
        id="70b-auto-degree",
    ),
    pytest.param(
        {"model": {"architecture": "llama-3.1-70b"}, "accelerator": {"gpusPerReplica": 8}},
        8, 131072, id="70b-explicit-degree",
    ),
    pytest.param(
        {"model": {"architecture": DELETE, "shape": {**SHAPE, "parameters": 8_030_000_000}}},
        1, 8192, id="inline-shape",
    ),
    pytest.param({"engine": {"args": ["--enable-prefix-caching"]}}, 1, 131072, id="extra-args"),
]  # fmt: skip


@pytest.mark.parametrize(("spec_patch", "gpus", "context"), VALID)
def test_valid_spec_is_planned(spec_patch: dict[str, Any], gpus: int, context: int) -> None:
    resolution = semantic.resolve(_spec(spec_patch))
    assert resolution.valid, resolution.message
    assert resolution.reason is R.SPEC_VALID
    assert resolution.plan is not None and resolution.plan.fits
    assert (resolution.plan.gpus_per_replica, resolution.plan.context) == (gpus, context)
    assert semantic.check(_spec(spec_patch)) == []


def test_user_catalog_entries_are_used() -> None:
    """A GPU the packaged catalog lacks, added from a user's catalog file."""
    known = catalog.default().extended(
        {"gpus": {"acme-x1": {**_gpu_entry("nvidia-h100-80gb"), "product_label": "ACME-X1"}}}
    )
    resolution = semantic.resolve(_spec({"accelerator": {"type": "acme-x1"}}), known=known)
    assert resolution.valid, resolution.message
    assert resolution.gpu is not None and resolution.gpu.product_label == "ACME-X1"


def _gpu_entry(key: str) -> dict[str, Any]:
    entry = dataclasses.asdict(catalog.gpu(key))
    del entry["key"]
    return entry
