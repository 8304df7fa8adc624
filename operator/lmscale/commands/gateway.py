"""`lmscale gateway`: the activator, an OpenAI-compatible proxy that holds requests at zero."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "gateway", help="run the activator (holding reverse proxy)",
        description=(
            "Run the activator: an OpenAI-compatible reverse proxy that forwards each request "
            "to a ready backend of its model (fewest requests in flight first), streams "
            "responses as they come, and holds requests in a bounded queue while the model "
            "has no ready backend. A full queue or an expired hold is answered 503 with "
            "Retry-After. Per-model metrics are on the admin port at /metrics."),
        epilog=(
            "example:\n  lmscale gateway --model "
            "llama=http://llama-pods.ml.svc:8000@llama.ml.svc,llama.ml.svc.cluster.local"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[],
                        metavar="NAME=URL[,URL...][@HOST,...]",
                        help="a model: its served name, backend base URLs (pods or the model's "
                             "pod Service) and the host names it is reached by (repeatable)")
    parser.add_argument("--discover", action="store_true",
                        help="also serve every model lmscale puts behind the activator (its "
                             "<model>-pods Services, listed every --discover-interval "
                             "seconds), and ask the operator to wake a model at zero when a "
                             "request for it is held (an annotation on its resource)")
    parser.add_argument("--discover-interval", type=float, default=5.0, metavar="SECONDS",
                        help="seconds between lists of the models (default 5)")
    parser.add_argument("--kubeconfig", default=None,
                        help="with --discover outside a pod: the cluster's kubeconfig")
    parser.add_argument("--listen", default="0.0.0.0:8080", metavar="HOST:PORT",
                        help="proxy address (default 0.0.0.0:8080)")
    parser.add_argument("--admin-listen", default="0.0.0.0:9090", metavar="HOST:PORT",
                        help="/metrics and /healthz address (default 0.0.0.0:9090)")
    parser.add_argument("--hold-timeout", type=float, default=300.0, metavar="SECONDS",
                        help="longest a request waits for a ready backend (default 300)")
    parser.add_argument("--queue-size", type=int, default=256, metavar="N",
                        help="requests held per model at most; more get 503 (default 256)")
    parser.add_argument("--probe-path", default="/health",
                        help="readiness path on each backend (default /health)")
    parser.add_argument("--probe-interval", type=float, default=1.0, metavar="SECONDS",
                        help="seconds between readiness probes (default 1)")
    parser.add_argument("--grace", type=float, default=30.0, metavar="SECONDS",
                        help="on SIGTERM, how long streams in flight may finish (default 30)")
    parser.set_defaults(func=_run)


def _address(flag: str, value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{flag} {value!r}: expected HOST:PORT, e.g. 0.0.0.0:8080")
    return host.strip("[]") or "0.0.0.0", int(port)


def _run(args: argparse.Namespace) -> int:
    import logging

    from lmscale.gateway import hold, proxy, routes

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        if not args.model and not args.discover:
            raise ValueError("name a model (--model) or learn them from the cluster "
                             "(--discover)")
        table = routes.table([routes.parse_model(m) for m in args.model])
        settings = hold.HoldSettings(capacity=args.queue_size, timeout_s=args.hold_timeout)
        host, port = _address("--listen", args.listen)
        admin_host, admin_port = _address("--admin-listen", args.admin_listen)
    except ValueError as error:
        print(f"lmscale gateway: {error}", file=sys.stderr)
        return 2
    config = proxy.GatewayConfig(routes=table, hold=settings, probe_path=args.probe_path,
                                 probe_interval_s=args.probe_interval)
    kube = None
    if args.discover:
        from lmscale.k8s.client import Kube, make_api_client

        try:
            kube = Kube(make_api_client(args.kubeconfig, pool_size=4))
        except Exception as error:  # noqa: BLE001 - say why, not a traceback
            print(f"lmscale gateway: --discover: no cluster credentials: {error}",
                  file=sys.stderr)
            return 2

    async def main() -> None:
        from lmscale.gateway import discovery

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        waker = discovery.Waker(kube) if kube is not None else None
        gateway = proxy.Gateway(config, on_hold=waker)
        following = (asyncio.create_task(discovery.follow(
            gateway, kube, static=table, waker=waker, interval_s=args.discover_interval))
            if kube is not None else None)
        print(f"lmscale gateway: {len(table)} model(s){' and the cluster' if kube else ''} on "
              f"http://{host}:{port}, metrics on http://{admin_host}:{admin_port}/metrics",
              flush=True)
        try:
            await proxy.serve(gateway, host=host, port=port, admin_host=admin_host,
                              admin_port=admin_port, stop=stop, grace_s=args.grace)
        finally:
            if following is not None:
                following.cancel()

    asyncio.run(main())
    return 0
