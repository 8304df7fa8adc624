"""`lmscale run`: the operator (kopf) with lmscale's handlers and the scaling loop."""

from __future__ import annotations

import argparse
import logging
import random

from lmscale.settings import OperatorSettings


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("run", help="run the operator")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", default=[],
                       help="watch this namespace (repeatable); default LMSCALE_WATCH_NAMESPACES "
                            "or the whole cluster")
    scope.add_argument("-A", "--all-namespaces", action="store_true",
                       help="watch the whole cluster")
    peering = parser.add_mutually_exclusive_group()
    peering.add_argument("--peering", help="kopf peering name (default LMSCALE_PEERING)")
    peering.add_argument("--standalone", action="store_true",
                         help="no peering: for a single operator process")
    parser.add_argument("--priority", type=int, default=None,
                        help="peering priority; the highest live one acts (default: random)")
    parser.add_argument("--liveness", metavar="URL", default=None,
                        help="serve kopf's health endpoint, e.g. http://0.0.0.0:8081/healthz")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import kopf

    settings = OperatorSettings.from_env()
    kopf.configure(
        debug=settings.logging.level == "DEBUG",
        verbose=settings.logging.level in ("DEBUG", "INFO"),
        log_format=kopf.LogFormat.JSON if settings.logging.format == "json"
        else kopf.LogFormat.PLAIN,
    )
    logging.getLogger().setLevel(settings.logging.level)
    namespaces = tuple(args.namespace) or (() if args.all_namespaces
                                           else settings.kopf.watch_namespaces)
    peering_name = args.peering or settings.kopf.peering
    standalone = args.standalone or settings.kopf.standalone
    import lmscale.handlers  # noqa: F401  (registers the handlers with kopf)

    kopf.run(
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=standalone,
        peering_name=None if standalone else peering_name,
        priority=args.priority if args.priority is not None else random.randrange(1, 1_000_000),
        liveness_endpoint=args.liveness,
    )
    return 0
