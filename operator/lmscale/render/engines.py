"""One profile per model server: image, command line, health path and the flags lmscale owns.

To add an engine: write its `Engine` below (the command line from an `EngineInputs`), add it
to `ENGINES`, and add the kind to `lmscale.api.EngineKind`. Metric names live with the
metric sources (`lmscale.metrics`), not here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lmscale.api import Dtype, EngineKind

MODEL_SOURCE_MOUNT = "/model-source"


@dataclass(frozen=True)
class EngineInputs:
    """What a command line is made of, already resolved from the spec and the capacity plan."""

    model_path: str  # Hub id, local directory or s3:// URI the engine loads
    served_name: str  # the id clients request (spec.model.name)
    tensor_parallel: int
    max_model_len: int
    port: int
    dtype: Dtype
    streamed: bool = False  # weights streamed from object storage (s3://)


@dataclass(frozen=True)
class Engine:
    """A model server as lmscale runs it."""

    kind: EngineKind
    image: str  # tested default; spec.engine.image overrides it
    command: tuple[str, ...]
    health_path: str
    # Flags lmscale sets -> the spec field they come from; spec.engine.args must not repeat them.
    managed_flags: Mapping[str, str]
    build_args: Callable[[EngineInputs], list[str]]

    def args(self, inputs: EngineInputs) -> list[str]:
        return self.build_args(inputs)


def _vllm_args(i: EngineInputs) -> list[str]:
    args = [
        i.model_path,
        "--tensor-parallel-size", str(i.tensor_parallel),
        "--max-model-len", str(i.max_model_len),
        "--served-model-name", i.served_name,
        "--port", str(i.port),
    ]  # fmt: skip
    if i.dtype in (Dtype.BFLOAT16, Dtype.FLOAT16):
        args += ["--dtype", i.dtype.value]
    elif i.dtype is Dtype.FP8:
        args += ["--quantization", "fp8"]  # int4 checkpoints declare their own quantization
    if i.streamed:
        args += ["--load-format", "runai_streamer"]
    return args


def _tgi_args(i: EngineInputs) -> list[str]:
    args = [
        "--model-id", i.model_path,
        "--num-shard", str(i.tensor_parallel),
        "--max-total-tokens", str(i.max_model_len),
        "--max-input-tokens", str(i.max_model_len - 1),  # TGI wants room for one output token
        "--served-model-name", i.served_name,
        "--port", str(i.port),
        "--hostname", "0.0.0.0",
    ]  # fmt: skip
    if i.dtype in (Dtype.BFLOAT16, Dtype.FLOAT16):
        args += ["--dtype", i.dtype.value]
    elif i.dtype is Dtype.FP8:
        args += ["--quantize", "fp8"]
    return args


def _sglang_args(i: EngineInputs) -> list[str]:
    args = [
        "--model-path", i.model_path,
        "--tp", str(i.tensor_parallel),
        "--context-length", str(i.max_model_len),
        "--served-model-name", i.served_name,
        "--port", str(i.port),
        "--host", "0.0.0.0",  # SGLang listens on 127.0.0.1 by default: unreachable from a Service
        "--enable-metrics",  # off by default; the autoscaler reads sglang:num_queue_reqs
    ]  # fmt: skip
    if i.dtype in (Dtype.BFLOAT16, Dtype.FLOAT16):
        args += ["--dtype", i.dtype.value]
    elif i.dtype is Dtype.FP8:
        args += ["--quantization", "fp8"]
    return args


_TP = "accelerator.gpusPerReplica"
_CONTEXT = "model.maxContextLength"
_MODEL = "model.name or model.source"
_NAME = "model.name"
_PORT = "engine.port"
_HOST = ""  # no spec field: the engine must listen on all interfaces for the Service

VLLM = Engine(
    kind=EngineKind.VLLM,
    image="vllm/vllm-openai:v0.11.0",
    command=("vllm", "serve"),
    health_path="/health",
    managed_flags={
        "--tensor-parallel-size": _TP,
        "-tp": _TP,
        "--max-model-len": _CONTEXT,
        "--served-model-name": _NAME,
        "--port": _PORT,
        "--model": _MODEL,
    },  # fmt: skip
    build_args=_vllm_args,
)
TGI = Engine(
    kind=EngineKind.TGI,
    image="ghcr.io/huggingface/text-generation-inference:3.3.6",
    command=("text-generation-launcher",),
    health_path="/health",
    managed_flags={
        "--model-id": _MODEL,
        "--num-shard": _TP,
        "--max-total-tokens": _CONTEXT,
        "--max-input-tokens": _CONTEXT,
        "--served-model-name": _NAME,
        "--port": _PORT,
        "--hostname": _HOST,
    },  # fmt: skip
    build_args=_tgi_args,
)
SGLANG = Engine(
    kind=EngineKind.SGLANG,
    image="lmsysorg/sglang:v0.5.3",
    command=("python3", "-m", "sglang.launch_server"),
    health_path="/health",
    managed_flags={
        "--model-path": _MODEL,
        "--tp": _TP,
        "--tp-size": _TP,
        "--context-length": _CONTEXT,
        "--served-model-name": _NAME,
        "--port": _PORT,
        "--host": _HOST,
    },  # fmt: skip
    build_args=_sglang_args,
)

ENGINES: dict[EngineKind, Engine] = {e.kind: e for e in (VLLM, TGI, SGLANG)}


def engine(kind: EngineKind) -> Engine:
    """The profile of an engine kind."""
    return ENGINES[kind]


def managed_flag(arg: str, kind: EngineKind) -> tuple[str, str] | None:
    """(flag, spec field) when `arg` sets a flag lmscale owns (`--port=9000` -> `--port`)."""
    flag = arg.split("=", 1)[0]
    field = ENGINES[kind].managed_flags.get(flag)
    return None if field is None else (flag, field)
