"""`lmscale run`: the operator (kopf) with lmscale's handlers and the scaling loop."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys

from lmscale.settings import STANDALONE, OperatorSettings


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "run", help="run the operator",
        description=(
            "Run the lmscale operator: reconcile every LanguageModelDeployment into a "
            "Deployment, Service, Ingress and PodDisruptionBudget, report status, and scale "
            "the replicas from Prometheus. Credentials come from the pod's service account, "
            "else from KUBECONFIG (or ~/.kube/config). Settings are LMSCALE_* environment "
            "variables (docs/architecture.md); the Helm chart sets them."))
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", default=[],
                       help="watch this namespace (repeatable); default LMSCALE_WATCH_NAMESPACES "
                            "or the whole cluster")
    scope.add_argument("-A", "--all-namespaces", action="store_true",
                       help="watch the whole cluster")
    election = parser.add_mutually_exclusive_group()
    election.add_argument("--lease", help="leader-election Lease name (default LMSCALE_LEASE); "
                          "its namespace is LMSCALE_LEASE_NAMESPACE, else POD_NAMESPACE")
    election.add_argument("--standalone", action="store_true",
                          help="no leader election: for a single operator process")
    parser.add_argument("--liveness", metavar="URL", default=None,
                        help="serve kopf's health endpoint, e.g. http://0.0.0.0:8081/healthz")
    parser.set_defaults(func=_run)


def credentials_problem() -> str | None:
    """Why the operator could not reach a cluster, or None: said once, before kopf starts
    (kopf would otherwise retry its start-up with a traceback every minute)."""
    from lmscale.k8s.client import make_api_client
    from lmscale.k8s.credentials import CredentialsError

    try:
        make_api_client().close()
    except (CredentialsError, OSError, ValueError) as error:
        return (f"no Kubernetes credentials: not running in a pod with a service account, "
                f"and no usable kubeconfig ({error}); set KUBECONFIG to a kubeconfig file "
                "or run the operator in the cluster (helm install lmscale charts/lmscale)")
    return None


def _run(args: argparse.Namespace) -> int:
    problem = credentials_problem()
    if problem is not None:
        print(f"lmscale run: {problem}", file=sys.stderr)
        return 2
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
    lease = STANDALONE if args.standalone else (args.lease or settings.kopf.lease)
    settings = dataclasses.replace(settings, kopf=dataclasses.replace(
        settings.kopf, lease=lease, watch_namespaces=namespaces))
    import lmscale.handlers  # noqa: F401  (registers the handlers with kopf)
    from lmscale.handlers import election

    def start(stop: election.Stopper, leader: object) -> None:
        # Only the Lease holder runs kopf, so kopf's own peering is off.
        try:
            kopf.run(loop=stop.loop, stop_flag=stop.future, clusterwide=not namespaces,
                     namespaces=namespaces, standalone=True, liveness_endpoint=args.liveness,
                     memo=kopf.Memo(leader=leader, settings=settings))
        finally:
            stop.loop.close()

    code = election.run(settings, liveness=args.liveness, start=start)
    # Worker threads may still wait on an apiserver that does not answer; the Lease is
    # handed back (or could not be), so nothing is left to wait for.
    logging.shutdown()
    os._exit(code)
