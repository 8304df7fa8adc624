"""One profile per model server: image, command line, health path and the flags lmscale owns.

To add an engine: write its `Engine` below (the command line from an `EngineInputs`), add it
to `ENGINES`, add the kind to `lmscale.api.EngineKind`, and derive its flag list into
`lmscale.render.flags` (hack/extract_engine_flags.py); the render tests check every flag
rendered here against that list. Metric names live with the metric sources
(`lmscale.metrics`), not here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lmscale.api import Dtype, EngineKind
from lmscale.render import flags as engine_flags

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
class Probe:
    """One HTTP probe of the engine container: the path and how long one answer may take."""

    path: str
    timeout_seconds: int


@dataclass(frozen=True)
class Engine:
    """A model server as lmscale runs it."""

    kind: EngineKind
    image: str  # tested default; spec.engine.image overrides it
    command: tuple[str, ...]
    # startup and liveness: "does the engine work"; readiness: "may the Service send traffic"
    health: Probe
    readiness: Probe
    # Flags lmscale sets (primary spelling in the flag list) -> the spec field they come from;
    # spec.engine.args must not repeat them under any spelling.
    managed_flags: Mapping[str, str]
    build_args: Callable[[EngineInputs], list[str]]
    # A second listener the engine opens (flag, default port): engine.port must differ.
    side_port: tuple[str, int] | None = None

    @property
    def version(self) -> str:
        return engine_flags.VERSIONS[self.kind]

    @property
    def health_path(self) -> str:
        return self.health.path

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
        # no served name: TGI has no such flag; it answers any `model` and reports --model-id
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
        "--tp-size", str(i.tensor_parallel),
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
    image=f"vllm/vllm-openai:v{engine_flags.VERSIONS[EngineKind.VLLM]}",
    command=("vllm", "serve"),
    # /health asks the engine core process and answers at once, busy or not
    health=Probe("/health", timeout_seconds=5),
    readiness=Probe("/health", timeout_seconds=5),
    managed_flags={
        "--tensor-parallel-size": _TP,
        "--max-model-len": _CONTEXT,
        "--served-model-name": _NAME,
        "--port": _PORT,
        "--model": _MODEL,  # `vllm serve` refuses --model: the model is the positional
    },  # fmt: skip
    build_args=_vllm_args,
)
TGI = Engine(
    kind=EngineKind.TGI,
    image=f"ghcr.io/huggingface/text-generation-inference:{engine_flags.VERSIONS[EngineKind.TGI]}",
    command=("text-generation-launcher",),
    # /health checks the shards; it runs a one-token prefill only when no generation has
    # succeeded since the last failure
    health=Probe("/health", timeout_seconds=5),
    readiness=Probe("/health", timeout_seconds=5),
    managed_flags={
        "--model-id": _MODEL,
        "--num-shard": _TP,
        "--max-total-tokens": _CONTEXT,
        "--max-input-tokens": _CONTEXT,
        "--max-input-length": _CONTEXT,  # the legacy spelling of --max-input-tokens
        "--port": _PORT,
        "--hostname": _HOST,
    },  # fmt: skip
    build_args=_tgi_args,
    # the router serves its Prometheus metrics on a second listener, default 9000
    side_port=("--prometheus-port", 9000),
)
SGLANG = Engine(
    kind=EngineKind.SGLANG,
    image=f"lmsysorg/sglang:v{engine_flags.VERSIONS[EngineKind.SGLANG]}",
    command=("python3", "-m", "sglang.launch_server"),
    # /health (= /health_generate) pushes a one-token generation through the scheduler and
    # waits for any output, polling once a second for up to SGLANG_HEALTH_CHECK_TIMEOUT (20 s):
    # the right "does it work" check, too slow under load for readiness. /get_model_info is
    # what SGLang's own launcher polls to know the server is up, answered by the HTTP process.
    health=Probe("/health", timeout_seconds=25),
    readiness=Probe("/get_model_info", timeout_seconds=5),
    managed_flags={
        "--model-path": _MODEL,
        "--tensor-parallel-size": _TP,
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
    """(flag, spec field) when `arg` sets a flag lmscale owns under any spelling the engine
    accepts (`--port=9000` -> `--port`, `-tp` -> `--tensor-parallel-size`)."""
    if not engine_flags.looks_like_option(arg):
        return None
    option = engine_flags.scan(kind, [arg]).options[0]
    if option.flag is None:
        return None
    field = ENGINES[kind].managed_flags.get(option.flag.name)
    return None if field is None else (option.written, field)
