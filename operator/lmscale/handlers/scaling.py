"""The scaling loop: one asyncio task per operator process, started with the operator.

Only the replica that holds the leader Lease runs kopf at all (`handlers.election`), so one
task per process is one loop per cluster; nothing is attached to any Kubernetes object (no
daemon, no finalizer). Each cycle first checks that this process still leads: the moment
the Lease is lost the loop stops acting, and the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from typing import Any

import kopf

from lmscale.handlers import caches, endpoints, indexes
from lmscale.handlers.names import LMD
from lmscale.k8s import events
from lmscale.metrics.client import PrometheusClient
from lmscale.metrics.reader import MetricsReader
from lmscale.render.activation import WAKE_ANNOTATION
from lmscale.scaler.cycle import Scaler
from lmscale.settings import activator_service


async def _next_cycle(memo: kopf.Memo, seconds: float) -> None:
    """Sleep until the next period, or until the activator asks for a model to wake."""
    wake: asyncio.Event | None = getattr(memo, "wake", None)
    if wake is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), seconds)
    wake.clear()


def _leading(memo: kopf.Memo) -> bool:
    leader = getattr(memo, "leader", None)
    return leader is None or bool(leader.is_leader())


@kopf.on.startup()
async def start_scaling_loop(memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    memo.wake = asyncio.Event()
    memo.scaling_task = asyncio.create_task(scaling_loop(memo, logger, memo.indexes),
                                            name="lmscale scaling loop")


@kopf.on.event(*LMD, annotations={WAKE_ANNOTATION: kopf.PRESENT})
async def wake_requested(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """The activator holds a request for this model: run a cycle now, not at the period."""
    seen: dict[tuple[str, str], str] = memo.setdefault("wakes_seen", {})
    key = (str(body.metadata.namespace), body.metadata.name)
    value = body.metadata.annotations.get(WAKE_ANNOTATION, "")
    wake: asyncio.Event | None = getattr(memo, "wake", None)
    if seen.get(key) != value:
        seen[key] = value
        if wake is not None:
            wake.set()


@kopf.on.cleanup()
async def stop_scaling_loop(memo: kopf.Memo, **_: Any) -> None:
    task = getattr(memo, "scaling_task", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, timeout=2.0)


async def scaling_loop(memo: kopf.Memo, logger: kopf.Logger, index: indexes.Indexes) -> None:
    settings = memo.settings
    scaler = Scaler(
        kube=memo.kube, reader=MetricsReader.from_settings(settings, metrics=memo.metrics),
        settings=settings, post_event=functools.partial(events.post, memo.kube),
        metrics=memo.metrics,
        prometheus=PrometheusClient(settings.prometheus),
    )
    period = settings.scaler.period_seconds
    # Decide only once the watches have listed what exists: a pod index still filling
    # would read as missing replicas and scale up for nothing.
    await caches.wait_synced(memo.kube, settings, {"lmds": index.lmds,
                                                  "deployments": index.deployments,
                                                  "pods": index.pods},
                             timeout=max(30.0, 3 * period), logger=logger)
    index.synced.set()
    logger.info("scaling loop started: every %.0f s", period)
    try:
        while True:
            if not _leading(memo):
                logger.warning("not leading any more: the scaling loop stops")
                return
            started = time.monotonic()
            lmds = {k: v[-1] for k, v in index.lmds.snapshot().items()}
            split = {k: indexes.split_deployments(v)
                     for k, v in index.deployments.snapshot().items()}
            deployments = {k: p for k, (p, _) in split.items() if p is not None}
            variants = {k: f for k, (_, f) in split.items() if f}
            pods = index.pods.snapshot()
            report = await asyncio.to_thread(scaler.run_cycle, lmds=lmds,
                                             deployments=deployments, pods=pods,
                                             variant_deployments=variants,
                                             may_act=lambda: _leading(memo))
            memo.last_cycle_at = time.time()
            logger.debug("cycle: %s", report)
            if activator_service() is not None:  # the repair pass of handlers.endpoints
                await asyncio.to_thread(endpoints.sync_all, memo, lmds, pods,
                                        endpoints.activator_of(index.activator_slices))
            await _next_cycle(memo, max(0.0, period - (time.monotonic() - started)))
    finally:
        # Leadership lost or shutting down: stop exporting per-model gauges, so the
        # PrometheusRule never reads a frozen copy next to the active operator's.
        memo.metrics.clear_model_gauges()
