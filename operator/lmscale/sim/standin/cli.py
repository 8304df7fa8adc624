"""The command line of the engine the stand-in plays, read with that engine's own flag list.

An unknown flag, an ambiguous prefix or a missing value ends the process as the real parser
would: argparse's `usage:` line and `error: ...` with exit status 2 for vLLM and SGLang,
clap's `error: unexpected argument '--x' found` with exit status 2 for TGI. Everything else
becomes a `Config`: what the server and the step model need.

The model's architecture and GPU are not on an engine's command line; they come from the
environment (see `settings_from_env`), with the model name looked up in the catalog first.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lmscale.api import EngineKind
from lmscale.planner import catalog
from lmscale.render import flags as engine_flags

# Defaults of the real engines where the command line leaves them out.
_DEFAULT_PORT = {EngineKind.VLLM: 8000, EngineKind.TGI: 3000, EngineKind.SGLANG: 30000}
_DEFAULT_HOST = {
    EngineKind.VLLM: "0.0.0.0",
    EngineKind.TGI: "0.0.0.0",
    EngineKind.SGLANG: "127.0.0.1",  # SGLang listens on loopback unless told otherwise
}
_PROG = {
    EngineKind.VLLM: "vllm serve",
    EngineKind.TGI: "text-generation-launcher",
    EngineKind.SGLANG: "launch_server.py",
}
_USAGE = {
    EngineKind.VLLM: "usage: vllm serve [model_tag] [options]",
    EngineKind.SGLANG: "usage: launch_server.py [-h] --model-path MODEL_PATH [options]",
}
FALLBACK_ARCHITECTURE = "llama-3.2-1b"
FALLBACK_GPU = "nvidia-h100-80gb"


class UsageError(Exception):
    """The real engine would print `message` to stderr and exit with `status`."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Config:
    """One replica as its command line and environment describe it."""

    kind: EngineKind
    model: str  # what the engine loads (Hub id or path)
    served_name: str  # the id /v1/models lists and responses carry
    host: str
    port: int
    tensor_parallel: int
    max_model_len: int | None
    dtype: str
    side_port: int | None  # TGI's --prometheus-port listener
    graceful_seconds: float  # how long SIGTERM waits for in-flight requests
    architecture: str
    gpu: str
    speed: float  # virtual seconds per real second (tests run the model faster)
    startup_seconds: float  # real seconds before /health turns 200


def parse(kind: EngineKind, argv: Sequence[str], env: Mapping[str, str] | None = None) -> Config:
    """The Config of `argv` (what follows the program name), or a UsageError."""
    env = os.environ if env is None else env
    args = list(argv)
    if kind is EngineKind.VLLM:
        if not args or args[0] != "serve":
            got = repr(args[0]) if args else "none"
            raise UsageError(
                "usage: vllm [-h] [-v] {chat,complete,serve,bench,collect-env,run-batch} ...\n"
                f"vllm: error: this stand-in plays `vllm serve` only (got {got})"
            )
        args = args[1:]
    scan = engine_flags.scan(kind, args)
    _reject(kind, scan, args)
    values = {o.flag.name: o.values for o in scan.options if o.flag is not None}
    if kind is EngineKind.TGI:
        return _tgi(values, env, scan)
    return _argparse_engine(kind, values, scan, env)


def _reject(kind: EngineKind, scan: engine_flags.Scan, args: list[str]) -> None:
    """Fail as the engine's parser does, first problem first."""
    ambiguous = next((o for o in scan.options if o.candidates), None)
    unknown = [o for o in scan.options if o.flag is None and not o.candidates]
    if kind is EngineKind.TGI:
        if unknown:
            raise UsageError(_clap_unexpected(unknown[0].written))
        if scan.positionals:
            raise UsageError(_clap_unexpected(scan.positionals[0][1]))
        if scan.errors:
            raise UsageError(_clap(f"a value is required for '{_first_word(scan.errors[0][1])}' "
                                   "but none was supplied"))
        return
    usage = _USAGE[kind]
    prog = _PROG[kind]
    if ambiguous is not None:
        raise UsageError(f"{usage}\n{prog}: error: ambiguous option: {ambiguous.written} could "
                         f"match {', '.join(ambiguous.candidates)}")
    if scan.errors:
        flag = _first_word(scan.errors[0][1])
        what = "expected one argument" if "one value" in scan.errors[0][1] else (
            "expected at least one argument" if "+" in scan.errors[0][1] else
            f"ignored explicit argument {scan.errors[0][1].split('got ', 1)[-1].rstrip(')')}"
        )
        raise UsageError(f"{usage}\n{prog}: error: argument {flag}: {what}")
    allowed = 1 if kind is EngineKind.VLLM else 0
    extra_positionals = [a for _, a in scan.positionals[allowed:]]
    if unknown or extra_positionals:
        # argparse lists every leftover arg: unknown options and the values after them
        left = _leftovers(scan, args, allowed)
        raise UsageError(f"{usage}\n{prog}: error: unrecognized arguments: {' '.join(left)}")


def _leftovers(scan: engine_flags.Scan, args: list[str], allowed: int) -> list[str]:
    unknown = {o.index for o in scan.options if o.flag is None}
    extra = {i for i, _ in scan.positionals[allowed:]}
    return [a for i, a in enumerate(args) if i in unknown or i in extra]


def _first_word(text: str) -> str:
    return text.split(" ", 1)[0]


def _clap(message: str) -> str:
    return (f"error: {message}\n\nUsage: text-generation-launcher [OPTIONS]\n\n"
            "For more information, try '--help'.")


def _clap_unexpected(arg: str) -> str:
    return _clap(f"unexpected argument '{arg}' found\n\n"
                 f"  tip: to pass '{arg}' as a value, use '-- {arg}'")


def _int(flag: str, value: str, kind: EngineKind) -> int:
    try:
        return int(value)
    except ValueError:
        if kind is EngineKind.TGI:
            raise UsageError(_clap(f"invalid value '{value}' for '{flag} <{flag[2:].upper()}>': "
                                   "invalid digit found in string")) from None
        raise UsageError(f"{_USAGE[kind]}\n{_PROG[kind]}: error: argument {flag}: "
                         f"invalid int value: '{value}'") from None


def _argparse_engine(
    kind: EngineKind,
    values: dict[str, tuple[str, ...]],
    scan: engine_flags.Scan,
    env: Mapping[str, str],
) -> Config:
    if kind is EngineKind.VLLM:
        if scan.positionals:
            model = scan.positionals[0][1]
        elif "--model" in values:
            # vllm serve refuses --model (a ValueError from FlexibleArgumentParser)
            raise UsageError("ValueError: With `vllm serve`, you should provide the model as a "
                             "positional argument or in a config file instead of via the "
                             "`--model` option.", status=1)
        else:
            model = "Qwen/Qwen3-0.6B"  # vLLM 0.11's ModelConfig default
        tp_flag, context_flag = "--tensor-parallel-size", "--max-model-len"
    else:
        if "--model-path" not in values:
            raise UsageError(f"{_USAGE[kind]}\n{_PROG[kind]}: error: the following arguments are "
                             "required: --model-path/--model")
        model = values["--model-path"][0]
        tp_flag, context_flag = "--tensor-parallel-size", "--context-length"
    served = values.get("--served-model-name", (model,))[0]
    context = values.get(context_flag)
    return _config(
        kind,
        env,
        model=model,
        served_name=served,
        host=values.get("--host", (_DEFAULT_HOST[kind],))[0],
        port=_int("--port", values.get("--port", (str(_DEFAULT_PORT[kind]),))[0], kind),
        tensor_parallel=_int(tp_flag, values.get(tp_flag, ("1",))[0], kind),
        max_model_len=_human_int(context[0], kind, context_flag) if context else None,
        dtype=values.get("--dtype", ("auto",))[0],
        side_port=None,
        graceful_seconds=30.0,
    )


def _human_int(value: str, kind: EngineKind, flag: str) -> int:
    """vLLM's --max-model-len accepts 1k / 32K style; SGLang's --context-length a plain int."""
    if kind is EngineKind.VLLM and value[-1:].lower() in ("k", "m"):
        scale = 1000 if value[-1] in "km" else 1024
        scale = scale if value[-1].lower() == "k" else scale * scale
        return int(float(value[:-1]) * scale)
    return _int(flag, value, kind)


def _tgi(
    values: dict[str, tuple[str, ...]], env: Mapping[str, str], scan: engine_flags.Scan
) -> Config:
    flags = engine_flags.load(EngineKind.TGI)

    def get(flag: str, default: str | None) -> str | None:
        if flag in values and values[flag]:
            return values[flag][0]
        fallback = flags.flags[flag].env
        if fallback and fallback in env and flag != "--hostname":
            return env[fallback]  # clap's `env`: the variable when the flag is absent
        return default

    kind = EngineKind.TGI
    model = get("--model-id", "bigscience/bloom-560m") or ""
    total = get("--max-total-tokens", None)
    return _config(
        kind,
        env,
        model=model,
        served_name=model,  # TGI reports the model it loaded
        host=get("--hostname", "0.0.0.0") or "0.0.0.0",
        port=_int("--port", get("--port", "3000") or "3000", kind),
        tensor_parallel=_int("--num-shard", get("--num-shard", "1") or "1", kind),
        max_model_len=_int("--max-total-tokens", total, kind) if total else None,
        dtype=get("--dtype", "auto") or "auto",
        side_port=_int("--prometheus-port", get("--prometheus-port", "9000") or "9000", kind),
        graceful_seconds=float(get("--graceful-termination-timeout", "90") or "90"),
    )


def _config(kind: EngineKind, env: Mapping[str, str], **fields: object) -> Config:
    model = str(fields["model"])
    return Config(
        kind=kind,
        architecture=env.get("LMSCALE_STANDIN_ARCHITECTURE") or _architecture_of(model),
        gpu=env.get("LMSCALE_STANDIN_GPU") or FALLBACK_GPU,
        speed=float(env.get("LMSCALE_STANDIN_SPEED") or 1.0),
        startup_seconds=float(env.get("LMSCALE_STANDIN_STARTUP_SECONDS") or 0.0),
        **fields,  # type: ignore[arg-type]
    )


def _architecture_of(model: str) -> str:
    """The catalog entry whose Hub id is `model` (or its last path part), else the fallback."""
    tail = model.rstrip("/").rsplit("/", 1)[-1].lower()
    for arch in catalog.models():
        hub = arch.hf_id.lower()
        if hub == model.lower() or hub.rsplit("/", 1)[-1] == tail:
            return arch.key
    return FALLBACK_ARCHITECTURE
