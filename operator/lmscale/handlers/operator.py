"""Operator start-up: settings, the shared client, metrics server, health probe."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from lmscale import operator_metrics
from lmscale.k8s.client import Kube, make_api_client
from lmscale.settings import OperatorSettings


@kopf.on.startup()
def operator_startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config = OperatorSettings.from_env()
    memo.settings = config
    memo.kube = Kube(make_api_client())
    memo.metrics = operator_metrics.default()
    memo.metrics_server = operator_metrics.start_metrics_server(config.server,
                                                                metrics=memo.metrics)
    # Progress and the last-handled spec live in status, so the operator writes nothing
    # into metadata of a resource that Git owns.
    settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf.progress")
    settings.persistence.diffbase_storage = kopf.StatusDiffBaseStorage(
        field="status.kopf.lastHandledConfiguration")
    # kopf's own handler logs become Events only from WARNING up; what lmscale does is
    # posted explicitly, with messages that say what changed and why.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.execution.max_workers = 8
    settings.peering.stealth = True  # keep-alives are not logged


@kopf.on.cleanup()
def operator_cleanup(memo: kopf.Memo, **_: Any) -> None:
    server = getattr(memo, "metrics_server", None)
    if server is not None:
        server[0].shutdown()


@kopf.on.probe(id="scaler")
def scaler_alive(memo: kopf.Memo, **_: Any) -> str:
    """The liveness endpoint reports when the scaling loop last completed a cycle."""
    return str(getattr(memo, "last_cycle_at", "not yet"))
