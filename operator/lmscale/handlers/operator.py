"""Operator start-up: settings, the shared client, metrics server, health probe."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from lmscale import operator_metrics
from lmscale import settings as lmscale_settings
from lmscale.handlers import diffbase, drift, endpoints, indexes
from lmscale.handlers.names import CHILD_SELECTOR
from lmscale.k8s import credentials
from lmscale.k8s.client import Kube, make_api_client
from lmscale.planner import auto
from lmscale.render import activation
from lmscale.scaler import policy_spec
from lmscale.settings import OperatorSettings

CHILD_RESOURCES = (("", "v1", "pods"), ("", "v1", "services"), ("apps", "v1", "deployments"),
                   ("networking.k8s.io", "v1", "ingresses"),
                   ("policy", "v1", "poddisruptionbudgets"))

LIST_PAGE_SIZE = 200


@kopf.on.startup()
def operator_startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # `lmscale run` passes its settings (the command line wins over the environment).
    config = memo.get("settings") or OperatorSettings.from_env()
    memo.settings = config
    memo.kube = Kube(make_api_client())
    # kopf gives each object a shallow copy of this memo when it first sees it: state that
    # handlers share must exist here, or every object grows its own (a rendered copy of its
    # owner's children per child object: 0.7 MB per resource).
    memo.indexes = indexes.Indexes()
    drift.shared_state(memo)
    endpoints.slices_written(memo)
    memo.wakes_seen = {}
    memo.metrics = operator_metrics.default()
    policy_spec.observe(memo.metrics.record_calibration)
    auto.observe(memo.metrics.record_calibration_cpu)
    memo.metrics_server = operator_metrics.start_metrics_server(config.server,
                                                                metrics=memo.metrics)
    # Progress and the last-handled spec live in status, so the operator writes nothing
    # into metadata of a resource that Git owns.
    settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf.progress")
    # The reconciler writes the diff-base in its own status apply (handlers.diffbase).
    settings.persistence.diffbase_storage = diffbase.STORAGE
    # kopf's own handler logs become Events only from WARNING up; what lmscale does is
    # posted explicitly, with messages that say what changed and why.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    # List in pages, as client-go's informers do: a start-up's listing of 1,000 resources
    # and their children decoded at once (26 MB of JSON, 130 MB as Python) was most of the
    # operator's memory at its peak, which the allocator keeps. Paged, the peak is lower.
    settings.watching.chunk_size = LIST_PAGE_SIZE
    settings.execution.max_workers = 8
    memo.executor = settings.execution.executor  # for handlers that await between steps
    # Watch only what lmscale rendered (kopf's `labels=` filters run after the objects have
    # crossed the wire and been parsed).
    for resource in CHILD_RESOURCES:
        settings.watching.label_selectors[resource] = CHILD_SELECTOR
    activator = lmscale_settings.activator_service()
    if activator is not None:  # only the activator's own slices (handlers.endpoints)
        settings.watching.label_selectors[("discovery.k8s.io", "endpointslices")] = (
            f"{activation.SERVICE_NAME_LABEL}={activator[1]}")
    # An apiserver that stops answering must not hold the operator: requests time out, and
    # a stop (SIGTERM) that cannot finish gracefully ends the process within seconds.
    settings.networking.connect_timeout = 5
    settings.networking.request_timeout = 60
    settings.process.ultimate_exiting_timeout = 10


@kopf.on.login()
def operator_login(**_: Any) -> kopf.ConnectionInfo:
    """kopf's watches act as the same identity as lmscale's client (and, in a pod, reach
    the apiserver by the address the kubelet gives, not by cluster DNS)."""
    creds = credentials.load()
    token = creds.bearer_token()
    return kopf.ConnectionInfo(
        server=creds.server, ca_data=creds.ca_pem, insecure=creds.insecure,
        scheme="Bearer" if token else None, token=token,
        certificate_data=creds.cert_pem, private_key_data=creds.key_pem,
        default_namespace=creds.namespace)


@kopf.on.cleanup()
def operator_cleanup(memo: kopf.Memo, **_: Any) -> None:
    server = getattr(memo, "metrics_server", None)
    if server is not None:
        server[0].shutdown()


@kopf.on.probe(id="scaler")
def scaler_alive(memo: kopf.Memo, **_: Any) -> str:
    """The liveness endpoint reports when the scaling loop last completed a cycle."""
    return str(getattr(memo, "last_cycle_at", "not yet"))
