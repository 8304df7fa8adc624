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
        {"engine": {"args": ["--enable-prefix-cache"]}},
        "spec.engine.args[0]", R.INVALID_FIELD, "did you mean --enable-prefix-caching",
        id="engine-arg-unknown-to-vllm",
    ),
    pytest.param(
        {"engine": {"kind": "tgi", "args": ["--served-model-name", "x"]}},
        "spec.engine.args[0]", R.INVALID_FIELD, "not a flag of TGI 3.3.6",
        id="engine-arg-unknown-to-tgi",
    ),
    pytest.param(
        {"engine": {"kind": "sglang", "args": ["--mem-frac", "0.8"]}},
        "spec.engine.args[0]", R.INVALID_FIELD, "write --mem-fraction-static",
        id="engine-arg-abbreviated",
    ),
    pytest.param(
        {"engine": {"args": ["--max-num-seqs"]}},
        "spec.engine.args[0]", R.INVALID_FIELD, "expects one value",
        id="engine-arg-missing-value",
    ),
    pytest.param(
        {"engine": {"args": ["--enable-prefix-caching", "true"]}},
        "spec.engine.args[1]", R.INVALID_FIELD, "not the value of any flag",
        id="engine-arg-stray-value",
    ),
    pytest.param(
        {"engine": {"kind": "tgi", "port": 9000}},
        "spec.engine.port", R.INVALID_FIELD, "--prometheus-port",
        id="tgi-port-is-its-metrics-port",
    ),
    pytest.param(
        {"engine": {"kind": "tgi", "args": ["--prometheus-port", "8000"]}},
        "spec.engine.port", R.INVALID_FIELD, "set engine.port to another port",
        id="tgi-metrics-port-moved-onto-engine-port",
    ),
    pytest.param(
        {"model": {"architecture": DELETE, "shape": {**SHAPE, "parameters": 70_000_000_000}}},
        "spec.model.shape.parameters", R.INVALID_FIELD, "describes 8.03B",
        id="shape-disagrees-with-parameters",
    ),
    pytest.param(
        {"accelerator": {"fallbacks": [{"type": "nvidia-a100"}]}},
        "spec.accelerator.fallbacks[0].type", R.UNKNOWN_GPU_TYPE, "nvidia-a100-80gb",
        id="fallback-unknown-gpu",
    ),
    pytest.param(
        {"model": {"architecture": "llama-3.1-405b", "maxContextLength": 8192},
         "accelerator": {"type": "nvidia-h200",
                         "fallbacks": [{"type": "nvidia-a100-80gb"}]}},
        "spec.accelerator.fallbacks[0].type", R.DOES_NOT_FIT, "this fallback cannot hold",
        id="fallback-cannot-hold-the-model",
    ),
    pytest.param(
        {"model": {"architecture": "llama-3.1-70b", "maxContextLength": 8192},
         "accelerator": {"fallbacks": [{"type": "nvidia-a100-80gb", "gpusPerReplica": 1}]}},
        "spec.accelerator.fallbacks[0].gpusPerReplica", R.DOES_NOT_FIT,
        "set accelerator.fallbacks[0].gpusPerReplica to",
        id="fallback-explicit-degree-too-small",
    ),
    pytest.param(
        {"accelerator": {"fallbacks": [{"type": "nvidia-l4"}, {"type": "nvidia-t4"}]}},
        "spec.accelerator.fallbacks[1].type", R.DOES_NOT_FIT, "cannot run bfloat16",
        id="fallback-dtype-the-gpu-cannot-run",
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
        {"model": {"architecture": "llama-3.1-70b", "maxContextLength": 8192}}, 4, 8192,
        id="70b-auto-degree-cheapest-per-request",
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
    pytest.param({"engine": {"kind": "tgi", "port": 9000, "args": ["--prometheus-port", "9100"]}},
                 1, 131072, id="tgi-metrics-port-moved-away"),
    pytest.param({"engine": {"image": "vllm/vllm-openai:v0.12.0", "args": ["--new-flag"]}},
                 1, 131072, id="custom-image-may-have-newer-flags"),
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


def test_every_fallback_is_planned_like_the_primary() -> None:
    resolution = semantic.resolve(_spec({
        "model": {"architecture": "llama-3.1-70b", "maxContextLength": 8192},
        "accelerator": {"fallbacks": [{"type": "nvidia-a100-80gb"},
                                      {"type": "nvidia-l40s", "gpusPerReplica": 4}]}}))
    assert resolution.valid, resolution.message
    assert resolution.plan is not None and resolution.plan.gpu.key == "nvidia-h100-80gb"
    a100, l40s = resolution.fallback_plans
    assert (a100.gpu.key, l40s.gpu.key) == ("nvidia-a100-80gb", "nvidia-l40s")
    assert a100.fits and l40s.fits and l40s.gpus_per_replica == 4
    assert a100.context == l40s.context == 8192


def test_no_fallbacks_no_fallback_plans() -> None:
    assert semantic.resolve(_spec({})).fallback_plans == ()
