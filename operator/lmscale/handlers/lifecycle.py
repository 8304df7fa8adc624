"""A LanguageModelDeployment created, changed or found at start-up: reconcile its children."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from datetime import UTC, datetime
from typing import Any

import kopf

from lmscale import settings
from lmscale.controller.desired import (
    Invalid,
    Pending,
    activator_warning,
    desired_state,
    ignored_replicas,
)
from lmscale.handlers import diffbase, endpoints
from lmscale.handlers.names import LMD
from lmscale.k8s import reconcile
from lmscale.k8s.client import ApiException, namespace_gone


@kopf.on.resume(*LMD)
@kopf.on.create(*LMD)
@kopf.on.update(*LMD, field="spec")
async def lmd_reconcile(memo: kopf.Memo, logger: kopf.Logger, **kwargs: Any) -> None:
    """Reconcile on kopf's handler threads; a `gpusPerReplica: auto` choice that waits on
    calibrations is awaited here, holding no thread, while they compute in the background."""
    loop = asyncio.get_running_loop()
    while True:
        work = functools.partial(contextvars.copy_context().run, reconcile_now,
                                 memo=memo, logger=logger, **kwargs)  # kopf.event needs these
        pending = await loop.run_in_executor(memo.get("executor"), work)
        if pending is None:
            return
        logger.info("%s", pending.message)
        await pending.wait()


def reconcile_now(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, reason: str,
                  old: Any = None, retry: int = 0, **kwargs: Any) -> Pending | None:
    """Apply the children and status of `body`; what it waits on instead, if anything."""
    outcome = desired_state(body, wait=False)
    if isinstance(outcome, Pending):
        return outcome
    now = datetime.now(UTC)
    handled = diffbase.STORAGE.encoded(body)  # kopf's diff-base, in the status write below
    if isinstance(outcome, Invalid):
        # Running children stay as they are; the next spec change tries again (no retry loop).
        reconcile.write_spec_status(memo.kube, body, outcome, now=now, handled=handled)
        diffbase.STORAGE.written(body, handled)
        kopf.event(body, type="Warning", reason="InvalidSpec",
                   message=f"spec not applied, children left as they are: {outcome.message}")
        logger.warning("invalid spec: %s", outcome.message)
        return None
    try:
        changes = reconcile.apply_children(memo.kube, outcome,
                                           had_variants=reconcile.had_variants(body),
                                           new=reason == kopf.Reason.CREATE and retry == 0)
        # behind the activator: the selector-less Service gets its EndpointSlice at once
        endpoints.sync_one(memo, (str(body.metadata.namespace), body.metadata.name))
        # The calibrated target (capacityPlan.autoscaling) is the scaler's to write: a
        # calibration never runs, nor is waited for, on a handler thread.
        reconcile.write_spec_status(memo.kube, body, outcome, now=now, handled=handled)
        diffbase.STORAGE.written(body, handled)
    except ApiException as error:
        if namespace_gone(error):
            return None  # the namespace is going away, and the resource with it
        raise
    # On an update kopf passes the old value of the watched field (spec). On a resume it
    # passes what it last handled, which says nothing about what a user changed.
    previous = old if reason == kopf.Reason.UPDATE else None
    ignored = ignored_replicas(previous, body.get("spec") or {}, outcome.lmd)
    if ignored is not None:
        kopf.event(body, type="Warning", reason="ReplicasIgnored", message=ignored)
        logger.warning("%s", ignored)
    unserved = activator_warning(outcome.lmd, activator=settings.activator_service() is not None)
    if unserved is not None:
        kopf.event(body, type="Warning", reason="NoActivator", message=unserved)
        logger.warning("%s", unserved)
    plan = outcome.plan
    for verb in dict.fromkeys(c.verb for c in changes):  # one Event per verb, not per child
        children = ", ".join(f"{c.kind} {c.name}" for c in changes if c.verb == verb)
        kopf.event(body, type="Normal", reason=verb.capitalize(),
                   message=f"{verb} {children}: {plan.gpus_per_replica} x {plan.gpu.key} "
                   "per replica")
    return None
