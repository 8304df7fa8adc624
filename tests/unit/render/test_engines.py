"""Engine command lines: the flags each model server needs from the spec and the plan."""

from __future__ import annotations

import pytest
from tests.unit.render import builders

from lmscale.api import Dtype, EngineKind
from lmscale.render import engines, render_deployment

INPUTS = engines.EngineInputs(
    model_path="meta-llama/Llama-3.1-70B-Instruct",
    served_name="llama-70b",
    tensor_parallel=4,
    max_model_len=8192,
    port=8000,
    dtype=Dtype.BFLOAT16,
)

COMMAND_LINES = [
    pytest.param(
        EngineKind.VLLM,
        ["vllm", "serve", "meta-llama/Llama-3.1-70B-Instruct", "--tensor-parallel-size", "4",
         "--max-model-len", "8192", "--served-model-name", "llama-70b", "--port", "8000",
         "--dtype", "bfloat16"],
        id="vllm",
    ),
    pytest.param(
        EngineKind.TGI,
        ["text-generation-launcher", "--model-id", "meta-llama/Llama-3.1-70B-Instruct",
         "--num-shard", "4", "--max-total-tokens", "8192", "--max-input-tokens", "8191",
         "--port", "8000", "--hostname", "0.0.0.0",
         "--dtype", "bfloat16"],
        id="tgi",
    ),
    pytest.param(
        EngineKind.SGLANG,
        ["python3", "-m", "sglang.launch_server", "--model-path",
         "meta-llama/Llama-3.1-70B-Instruct", "--tp-size", "4", "--context-length", "8192",
         "--served-model-name", "llama-70b", "--port", "8000", "--host", "0.0.0.0",
         "--enable-metrics", "--dtype", "bfloat16"],
        id="sglang",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "expected"), COMMAND_LINES)
def test_command_line(kind: EngineKind, expected: list[str]) -> None:
    engine = engines.engine(kind)
    assert [*engine.command, *engine.args(INPUTS)] == expected


DTYPES = [
    pytest.param(EngineKind.VLLM, Dtype.FP8, ["--quantization", "fp8"], id="vllm-fp8"),
    pytest.param(EngineKind.TGI, Dtype.FP8, ["--quantize", "fp8"], id="tgi-fp8"),
    pytest.param(EngineKind.SGLANG, Dtype.FP8, ["--quantization", "fp8"], id="sglang-fp8"),
    pytest.param(EngineKind.VLLM, Dtype.FLOAT16, ["--dtype", "float16"], id="vllm-fp16"),
    pytest.param(EngineKind.VLLM, Dtype.INT4, [], id="vllm-int4-from-checkpoint"),
    pytest.param(EngineKind.TGI, Dtype.INT4, [], id="tgi-int4-from-checkpoint"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "dtype", "flags"), DTYPES)
def test_dtype_flags(kind: EngineKind, dtype: Dtype, flags: list[str]) -> None:
    args = engines.engine(kind).args(engines.EngineInputs(**{**INPUTS.__dict__, "dtype": dtype}))
    precision = [a for a in args if a in {"--dtype", "--quantization", "--quantize"}]
    if flags:
        assert args[-2:] == flags
    else:
        assert precision == [], "int4 checkpoints declare their own quantization"


def test_s3_weights_stream_in_vllm() -> None:
    inputs = engines.EngineInputs(**{**INPUTS.__dict__, "model_path": "s3://b/m", "streamed": True})
    args = engines.engine(EngineKind.VLLM).args(inputs)
    assert args[0] == "s3://b/m"
    assert args[-2:] == ["--load-format", "runai_streamer"]


MANAGED = [
    pytest.param("--port=9000", EngineKind.VLLM, ("--port", "engine.port"), id="equals-form"),
    pytest.param("-tp", EngineKind.VLLM, ("-tp", "accelerator.gpusPerReplica"), id="short"),
    pytest.param("--num-shard", EngineKind.TGI, ("--num-shard", "accelerator.gpusPerReplica"),
                 id="tgi"),
    pytest.param("--enable-prefix-caching", EngineKind.VLLM, None, id="free-flag"),
    pytest.param("--tp", EngineKind.VLLM, None, id="other-engines-flag"),
]  # fmt: skip


@pytest.mark.parametrize(("arg", "kind", "expected"), MANAGED)
def test_managed_flag(arg: str, kind: EngineKind, expected: tuple[str, str] | None) -> None:
    assert engines.managed_flag(arg, kind) == expected


def test_every_engine_kind_has_a_profile() -> None:
    assert set(engines.ENGINES) == set(EngineKind)
    for engine in engines.ENGINES.values():
        assert ":" in engine.image, "default images are pinned to a tag"


PROBES = [
    pytest.param(EngineKind.VLLM, "/health", "/health", id="vllm"),
    pytest.param(EngineKind.TGI, "/health", "/health", id="tgi"),
    # SGLang's /health generates a token and may take up to SGLANG_HEALTH_CHECK_TIMEOUT (20 s)
    pytest.param(EngineKind.SGLANG, "/health", "/get_model_info", id="sglang"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "health", "readiness"), PROBES)
def test_probes_use_paths_and_timeouts_that_fit_the_engine(
    kind: EngineKind, health: str, readiness: str
) -> None:
    lmd, plan = builders.planned({"engine": {"kind": kind.value}})
    container = render_deployment(lmd, plan)["spec"]["template"]["spec"]["containers"][0]
    probes = {name: container[name] for name in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert probes["readinessProbe"]["httpGet"]["path"] == readiness
    assert probes["startupProbe"]["httpGet"]["path"] == health
    assert probes["livenessProbe"]["httpGet"]["path"] == health
    for probe in probes.values():
        assert probe["timeoutSeconds"] <= probe["periodSeconds"]
    if kind is EngineKind.SGLANG:
        assert probes["livenessProbe"]["timeoutSeconds"] > 20
        assert probes["startupProbe"]["timeoutSeconds"] > 20
