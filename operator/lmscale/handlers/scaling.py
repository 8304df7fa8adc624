"""The scaling loop, as one kopf daemon: exactly one per operator, paused with peering.

kopf runs a daemon per watched object; attaching it to lmscale's own CRD object (there is
exactly one) gives one loop per operator process, and kopf stops it when peering pauses
this operator, so two operator replicas never scale the same model.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, cast

import kopf

from lmscale.api.resource import CRD_NAME
from lmscale.controller.pods import PodInfo
from lmscale.metrics.client import PrometheusClient
from lmscale.metrics.reader import MetricsReader
from lmscale.scaler.cycle import Scaler


def _is_lmscale_crd(name: str, **_: Any) -> bool:
    return name == CRD_NAME


def _post_event(body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
    kopf.event(cast(kopf.Body, body), type=type_, reason=reason, message=message)


def _snapshot(index: kopf.Index[Any, Any]) -> dict[Any, Any]:
    return {key: list(store) for key, store in index.items()}


@kopf.daemon(  # type: ignore[arg-type]  # kopf's protocol lists every kwarg; indexes come by name
    "apiextensions.k8s.io", "v1", "customresourcedefinitions",
    when=_is_lmscale_crd, cancellation_timeout=5.0, id="scaler")
async def scaling_loop(
    stopped: kopf.DaemonStopped, memo: kopf.Memo, logger: kopf.Logger,
    lmds_by_name: kopf.Index[tuple[str, str], dict[str, Any]],
    deployments_by_lmd: kopf.Index[tuple[str, str], dict[str, Any]],
    pods_by_lmd: kopf.Index[tuple[str, str], PodInfo],
    **_: Any,
) -> None:
    settings = memo.settings
    scaler = Scaler(
        kube=memo.kube, reader=MetricsReader.from_settings(settings, metrics=memo.metrics),
        settings=settings, post_event=_post_event, metrics=memo.metrics,
        prometheus=PrometheusClient(settings.prometheus),
    )
    period = settings.scaler.period_seconds
    logger.info("scaling loop started: every %.0f s", period)
    while not stopped:
        started = time.monotonic()
        lmds = {k: v[-1] for k, v in _snapshot(lmds_by_name).items()}
        deployments = {k: v[-1] for k, v in _snapshot(deployments_by_lmd).items()}
        pods = _snapshot(pods_by_lmd)
        report = await asyncio.to_thread(scaler.run_cycle, lmds=lmds,
                                         deployments=deployments, pods=pods)
        memo.last_cycle_at = time.time()
        logger.debug("cycle: %s", report)
        await stopped.wait(max(0.0, period - (time.monotonic() - started)))
