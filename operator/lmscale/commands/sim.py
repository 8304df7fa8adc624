"""`lmscale sim serve`: play the model servers of a cluster for its Prometheus.

    lmscale sim serve --kubeconfig .localcluster/kubeconfig \\
        --register-targets .localcluster/prometheus/targets --load constant:4

Then `curl -X PUT localhost:9400/load/<namespace>/<name> -d '{"rps": 20}'` changes one
deployment's load, and `curl localhost:9400/state` shows each deployment's fleet.

With --register-targets DIR it writes DIR/sim-serve-<port>.json (a file_sd target) and
removes it on exit. Run one per cluster, or give each its own --namespace: two simulators
playing the same pods would double every series the operator sums.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from lmscale.sim.balancer import BalancerKind
from lmscale.sim.serve import load

DEFAULT_LISTEN = "127.0.0.1:9400"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("sim", help="live simulators for a cluster")
    actions = parser.add_subparsers(dest="sim_command", required=True, metavar="SUBCOMMAND")
    serve = actions.add_parser(
        "serve",
        help="export model-server and DCGM metrics for every Ready pod of each "
        "LanguageModelDeployment, under a load you set",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster, then "
                       "$KUBECONFIG or ~/.kube/config)")
    serve.add_argument("--listen", default=DEFAULT_LISTEN, type=_address,
                       help=f"HOST:PORT to serve /metrics, /state and /load on "
                       f"(default {DEFAULT_LISTEN}; port 0 picks a free one)")
    serve.add_argument("--register-targets", type=Path, metavar="DIR",
                       help="write a Prometheus file_sd target for this server into DIR "
                       "(removed on exit)")
    serve.add_argument("--load", default="constant:0", type=_spec, metavar="SPEC",
                       help="default load of every deployment: constant:RPS, "
                       "steps:RPS@SECONDS,..., or trace:FILE[@SPEEDx] (default constant:0)")
    serve.add_argument("--prompt-tokens", type=int, default=512,
                       help="prompt length of constant and step loads (default 512)")
    serve.add_argument("--output-tokens", type=int, default=128,
                       help="output length of constant and step loads (default 128)")
    serve.add_argument("--balancer", choices=[k.value for k in BalancerKind],
                       default=BalancerKind.LEAST_REQUESTS.value,
                       help="how requests spread over ready pods (default least-requests)")
    serve.add_argument("--seed", type=int, default=0, help="seed of the arrival processes")
    serve.add_argument("--poll-seconds", type=float, default=2.0,
                       help="how often to list LanguageModelDeployments and pods (default 2)")
    serve.add_argument("--namespace", "-n", action="append", default=[], dest="namespaces",
                       help="only this namespace (repeatable; default all)")
    serve.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    serve.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Imported here: the Kubernetes client is slow to import and other commands skip it.
    from lmscale.devcluster.prometheus import register_target
    from lmscale.k8s.client import Kube, make_api_client
    from lmscale.sim.serve.fleet import Fleet
    from lmscale.sim.serve.kube import ClusterSource
    from lmscale.sim.serve.server import Simulator, Traces, make_http_server

    try:
        tokens = load.Tokens(args.prompt_tokens, args.output_tokens)
        traces = Traces()
        default = traces.load(args.load, tokens)
    except (ValueError, OSError) as error:
        print(f"lmscale sim serve: {error}", file=sys.stderr)
        return 2
    source = ClusterSource(Kube(make_api_client(args.kubeconfig)),
                           namespaces=tuple(args.namespaces))
    fleet = Fleet(default_load=default, balancer=BalancerKind(args.balancer), seed=args.seed)
    simulator = Simulator(fleet, source=source.poll, traces=traces, tokens=tokens,
                          poll_seconds=args.poll_seconds)
    host, port = args.listen
    try:
        server = make_http_server(simulator, host, port)
    except OSError as error:
        print(f"lmscale sim serve: cannot listen on {host}:{port}: {error}", file=sys.stderr)
        return 1
    address = f"{host}:{server.server_address[1]}"
    # Prometheus on this machine scrapes a wildcard listener on the loopback address.
    scrape = f"127.0.0.1:{server.server_address[1]}" if host in ("0.0.0.0", "::") else address
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stopper(stop))
    target: Path | None = None
    simulator.start()
    serving = threading.Thread(target=server.serve_forever, name="sim-serve-http", daemon=True)
    serving.start()
    try:
        if args.register_targets is not None:
            job = f"sim-serve-{server.server_address[1]}"
            target = register_target(args.register_targets, job, scrape)
        print(f"lmscale sim serve: listening on http://{address} (load {args.load})",
              flush=True)
        stop.wait()
    finally:
        if target is not None:
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
        server.shutdown()
        server.server_close()
        simulator.stop()
        source.close()
    return 0


def _stopper(stop: threading.Event) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    return handler


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def _spec(text: str) -> load.LoadSpec:
    try:
        return load.parse_spec(text)
    except load.LoadSpecError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
