"""Start the stand-in: parse the engine's command line, plan the replica, serve, drain on SIGTERM.

Environment (the model and GPU are not on an engine's command line):
  LMSCALE_STANDIN_ARCHITECTURE  catalog key of the model (default: the catalog entry whose Hub id
                                is the served model, else llama-3.2-1b)
  LMSCALE_STANDIN_GPU           catalog key of the GPU (default nvidia-h100-80gb)
  LMSCALE_STANDIN_SPEED         virtual seconds per real second (default 1: real time)
  LMSCALE_STANDIN_STARTUP_SECONDS  seconds before /health answers 200 (default 0)
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from lmscale.api import EngineKind
from lmscale.planner import catalog
from lmscale.planner.performance import replica_performance
from lmscale.planner.plan import plan_replica
from lmscale.sim.standin import cli, metrics
from lmscale.sim.standin.replica import Replica
from lmscale.sim.standin.server import StandinServer, State

_KINDS = {"vllm": EngineKind.VLLM, "tgi": EngineKind.TGI, "sglang": EngineKind.SGLANG}
_DTYPES = {"float16": "float16", "half": "float16", "fp16": "float16"}


def cli_main(argv: Sequence[str] | None = None) -> int:
    """`python -m lmscale.sim.standin KIND ARGS...`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in _KINDS:
        print(f"usage: python -m lmscale.sim.standin {{{','.join(_KINDS)}}} ARGS...",
              file=sys.stderr)
        return 2
    return run(_KINDS[args[0]], args[1:])


def vllm_main() -> int:
    return run(EngineKind.VLLM, sys.argv[1:])


def tgi_main() -> int:
    return run(EngineKind.TGI, sys.argv[1:])


def sglang_main() -> int:
    return run(EngineKind.SGLANG, sys.argv[1:])


def run(kind: EngineKind, argv: Sequence[str]) -> int:
    """Serve until SIGTERM (or SIGINT) and a drain; the exit status the real engine would give."""
    try:
        config = cli.parse(kind, argv)
        replica = _replica(config)
    except cli.UsageError as error:
        print(error.message, file=sys.stderr)
        return error.status
    state = State(config, replica)
    try:
        servers = [StandinServer((config.host, config.port), state)]
        if config.side_port is not None and config.side_port != config.port:
            servers.append(StandinServer((config.host, config.side_port), state))
    except OSError as error:
        print(f"error: cannot listen on {config.host}: {error}", file=sys.stderr)
        return 1
    for extra in servers[1:]:
        threading.Thread(target=extra.serve_forever, daemon=True).start()

    def on_term(signum: int, frame: FrameType | None) -> None:
        if state.draining.is_set():
            return
        state.draining.set()
        print(f"received signal {signum}: draining {state.active} request(s)", flush=True)

        def finish() -> None:
            state.wait_idle(config.graceful_seconds)
            for server in servers:
                server.shutdown()

        threading.Thread(target=finish, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    print(f"{kind.value} stand-in serving {config.served_name} ({config.architecture} on "
          f"{config.gpu}, tp={config.tensor_parallel}) on http://{config.host}:{config.port}",
          flush=True)
    try:
        servers[0].serve_forever(poll_interval=0.1)
    finally:
        for server in servers:
            server.server_close()
        replica.stop()
    print("drained; exiting", flush=True)
    return 0


def _replica(config: cli.Config) -> Replica:
    try:
        model = catalog.model(config.architecture)
        gpu = catalog.gpu(config.gpu)
    except catalog.UnknownKeyError as error:
        raise cli.UsageError(f"error: {error}; set LMSCALE_STANDIN_ARCHITECTURE / "
                             "LMSCALE_STANDIN_GPU to catalog keys (`lmscale plan --list`)",
                             status=1) from None
    context = config.max_model_len or model.max_context
    plan = plan_replica(model, gpu, dtype=_DTYPES.get(config.dtype, "bfloat16"),
                        context=min(context, model.max_context),
                        gpus_per_replica=config.tensor_parallel)
    if not plan.fits:
        raise cli.UsageError(f"ValueError: {plan.reason} (model {config.architecture}, "
                             f"GPU {config.gpu}, tensor parallel {config.tensor_parallel}, "
                             f"context {context})", status=1)
    bounds = metrics.buckets(config.kind)
    return Replica(
        replica_performance(plan),
        speed=config.speed,
        ttft_buckets=bounds["ttft_buckets"],
        duration_buckets=bounds["duration_buckets"],
        length_buckets=bounds["length_buckets"],
    )
