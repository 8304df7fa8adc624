"""A LanguageModelDeployment created, changed or found at start-up: reconcile its children."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf

from lmscale.controller.desired import Desired, Invalid, desired_state
from lmscale.handlers.names import LMD
from lmscale.k8s import reconcile
from lmscale.k8s.client import ApiException, namespace_gone
from lmscale.scaler.policy_spec import calibration_ready, target_per_replica, used_calibration


@kopf.on.resume(*LMD)
@kopf.on.create(*LMD)
@kopf.on.update(*LMD, field="spec")
def lmd_reconcile(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    outcome = desired_state(body)
    now = datetime.now(UTC)
    if isinstance(outcome, Invalid):
        # Running children stay as they are; the next spec change tries again (no retry loop).
        reconcile.write_spec_status(memo.kube, body, outcome, now=now)
        kopf.event(body, type="Warning", reason="InvalidSpec",
                   message=f"spec not applied, children left as they are: {outcome.message}")
        logger.warning("invalid spec: %s", outcome.message)
        return
    try:
        changes = reconcile.apply_children(memo.kube, outcome)
        if outcome.lmd.spec.scaling.enabled and not calibration_ready(outcome.lmd, outcome.plan):
            # Calibrating takes seconds the first time: report generation and plan first.
            reconcile.write_spec_status(memo.kube, body, outcome, now=now)
        reconcile.write_spec_status(memo.kube, body, outcome, now=now,
                                    autoscaling=autoscaling_summary(outcome))
    except ApiException as error:
        if namespace_gone(error):
            return  # the namespace is going away, and the resource with it
        raise
    plan = outcome.plan
    for change in changes:
        kopf.event(body, type="Normal", reason=change.verb.capitalize(),
                   message=f"{change}: {plan.gpus_per_replica} x {plan.gpu.key} per replica")


def autoscaling_summary(desired: Desired) -> dict[str, Any] | None:
    """What the autoscaler aims at per replica, published next to the capacity plan."""
    if not desired.lmd.spec.scaling.enabled:
        return None
    cal = used_calibration(desired.lmd, desired.plan)
    summary: dict[str, Any] = {
        "target_in_flight_per_replica": round(target_per_replica(desired.lmd, cal), 2)}
    if cal is None:
        return summary | {"method": "scaling.targetInFlightPerReplica"}
    return summary | {"requests_per_second_per_replica": round(cal.rate, 3),
                      "prompt_tokens_per_second_per_replica": round(cal.prompt_tokens_rate or 0),
                      "ttft_p95_seconds_at_target": round(cal.ttft_p95, 4),
                      "method": "calibrated on the engine model for 99% of requests in the SLO"}
