"""From a LanguageModelDeployment body to the children it should have, or why it cannot."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

from pydantic import ValidationError

from lmscale import render, settings
from lmscale.api import ActivatorMode, RoutingMode, semantic
from lmscale.api.plan_status import CapacityPlanStatus
from lmscale.api.resource import FieldError, LanguageModelDeployment, parse_spec
from lmscale.api.status import ConditionReason
from lmscale.planner import auto
from lmscale.planner.plan import CapacityPlan
from lmscale.render import activation, inference_pool


@dataclasses.dataclass(frozen=True)
class Resolved:
    """A valid spec and its capacity plan: what the scaler decides on (no manifests)."""

    lmd: LanguageModelDeployment
    plan: CapacityPlan
    # The plan of each accelerator.fallbacks type, in order.
    fallback_plans: tuple[CapacityPlan, ...] = dataclasses.field(default=(), kw_only=True)


@dataclasses.dataclass(frozen=True)
class Desired(Resolved):
    children: render.Children

    @property
    def manifests(self) -> list[dict[str, Any]]:
        return self.children.present()


@dataclasses.dataclass(frozen=True)
class Invalid:
    """A spec the operator cannot serve: what is wrong, field by field, with the fix."""

    problems: tuple[FieldError, ...]
    reason: ConditionReason

    @property
    def message(self) -> str:
        return "\n".join(str(p) for p in self.problems)


@dataclasses.dataclass(frozen=True)
class Pending:
    """A valid spec whose `gpusPerReplica: auto` choice waits on calibrations computing in
    the background: nothing is rendered or scaled for it until they are done."""

    calibrations: tuple[Future[Any], ...]

    @property
    def message(self) -> str:
        n = len(self.calibrations)
        return (f"choosing gpusPerReplica: auto: {n} candidate degree{'s' if n > 1 else ''} "
                "calibrating for this SLO and token mix")

    def done(self) -> bool:
        return all(f.done() for f in self.calibrations)

    async def wait(self) -> None:
        """Until every calibration is done (or failed: the next try computes it again)."""
        await asyncio.wait([asyncio.wrap_future(f) for f in self.calibrations])


# Parsed specs and their plans, shared by every resource with the same spec: a fleet of
# one spec holds one pydantic model and one plan, not one per resource.
_SPECS = 512
_by_spec: OrderedDict[str, Any] = OrderedDict()
_by_spec_lock = threading.Lock()


def _resolution(spec: Mapping[str, Any], status: Mapping[str, Any], *, wait: bool) -> Any:
    key = json.dumps(spec, sort_keys=True, default=str)
    with _by_spec_lock:
        kept = _by_spec.get(key)
        if kept is not None and not (isinstance(kept, Pending) and (wait or kept.done())):
            _by_spec.move_to_end(key)
            return kept
    parsed = parse_spec(spec)
    if isinstance(parsed, list):
        found: Any = Invalid(problems=tuple(parsed), reason=ConditionReason.INVALID_FIELD)
    else:
        try:
            resolution = semantic.resolve(parsed, decided=decided_degrees(status), wait=wait)
        except auto.CalibrationPending as pending:
            # kept until they are done: then asked again, and the choice is made
            found = Pending(pending.pending)
        else:
            found = _resolved(parsed, resolution)
    with _by_spec_lock:
        _by_spec[key] = found
        _by_spec.move_to_end(key)
        while len(_by_spec) > _SPECS:
            _by_spec.popitem(last=False)
    return found


def _resolved(parsed: Any, resolution: semantic.Resolution) -> Any:
    if not resolution.valid or resolution.plan is None:
        return Invalid(problems=resolution.problems, reason=resolution.reason)
    return (parsed, resolution.plan, resolution.fallback_plans)


def decided_degrees(status: Mapping[str, Any]) -> dict[str, auto.Decided]:
    """The `gpusPerReplica: auto` choices status.capacityPlan records, by GPU type: a
    restarted operator keeps them while their inputs are the same (no calibration)."""
    record = status.get("capacityPlan")
    if not isinstance(record, Mapping) or not record:
        return {}
    try:
        plan = CapacityPlanStatus.model_validate(record).model_dump()
    except ValidationError:
        return {}  # an unreadable plan is planned again
    found = {}
    for entry in [plan, *(plan.get("fallbacks") or [])]:
        decided = auto.Decided.from_plan_dict(entry)
        if decided is not None:
            found[decided.gpu] = decided
    return found


def resolve(body: Mapping[str, Any], *, wait: bool = True) -> Resolved | Invalid | Pending:
    """The spec parsed and planned (shared between equal specs), without rendering.

    `wait=False` (the operator) returns `Pending` rather than wait for the calibrations a
    `gpusPerReplica: auto` choice needs; they compute in the background meanwhile."""
    found = _resolution(body.get("spec") or {}, body.get("status") or {}, wait=wait)
    if isinstance(found, Invalid | Pending):
        return found
    parsed, plan, fallback_plans = found
    meta = body["metadata"]
    metadata = {k: meta[k] for k in ("name", "namespace", "uid", "generation") if k in meta}
    return Resolved(lmd=LanguageModelDeployment(metadata=metadata, spec=parsed), plan=plan,
                    fallback_plans=fallback_plans)


def endpoint_picker_image() -> str:
    """The chart's routing.endpointPickerImage (LMSCALE_ENDPOINT_PICKER_IMAGE) or the default."""
    return settings.endpoint_picker_image() or inference_pool.DEFAULT_IMAGE


def desired_state(body: Mapping[str, Any], *, wait: bool = True) -> Desired | Invalid | Pending:
    resolved = resolve(body, wait=wait)
    if isinstance(resolved, Invalid | Pending):
        return resolved
    lmd = resolved.lmd
    children = render.render_children(lmd, resolved.plan,
                                      endpoint_picker_image=endpoint_picker_image(),
                                      fallback_plans=resolved.fallback_plans,
                                      activator=settings.activator_service() is not None)
    owner = render.owner_reference(body)
    for manifest in children.present():
        manifest["metadata"]["ownerReferences"] = [copy.deepcopy(owner)]
    return Desired(lmd=lmd, plan=resolved.plan, children=children,
                   fallback_plans=resolved.fallback_plans)


def initial_replicas(lmd: LanguageModelDeployment) -> int:
    """Replicas for a Deployment that does not exist yet, before the scaler's first cycle."""
    if not lmd.spec.scaling.enabled:
        return lmd.spec.replicas
    return lmd.spec.scaling.min_replicas


def ignored_replicas(old_spec: Mapping[str, Any] | None, new_spec: Mapping[str, Any],
                     lmd: LanguageModelDeployment) -> str | None:
    """Why a change of `spec.replicas` (`kubectl scale lmd`, an HPA) has no effect, or None.

    Under autoscaling the operator's scaler owns the replica count; honouring a second
    writer would make the two fight, so the change is kept in spec but reported.
    """
    if old_spec is None or not lmd.spec.scaling.enabled:
        return None
    before, after = old_spec.get("replicas"), new_spec.get("replicas")
    if before == after or before is None or after is None:
        return None  # the schema's default filling in is nobody's change
    scaling = lmd.spec.scaling
    return (f"spec.replicas changed {before} -> {after} but is ignored while "
            f"spec.scaling.enabled is true: the autoscaler keeps "
            f"{scaling.min_replicas}-{scaling.max_replicas} replicas "
            f"(spec.scaling.minReplicas/maxReplicas); set spec.scaling.enabled: false to "
            f"set replicas by hand or with kubectl scale")


def activator_warning(lmd: LanguageModelDeployment, *, activator: bool) -> str | None:
    """What the spec asks of an activator that this operator cannot give, or None.

    Valid specs both: the chart decides whether an activator exists, and running
    workloads stay as they are. Scale to zero is then not applied (`policy_spec`): a model
    at zero with nothing to hold its first request would refuse requests for good.
    """
    scaling, routing = lmd.spec.scaling, lmd.spec.routing
    install = ("install the chart with activator.enabled=true (it sets "
               "LMSCALE_ACTIVATOR_SERVICE)")
    if (scaling.enabled and scaling.scale_to_zero.enabled
            and not activation.fronted(lmd, activator=activator)):
        kept = f"the model is kept at spec.scaling.minReplicas ({scaling.min_replicas})"
        if routing.mode is RoutingMode.INFERENCE_POOL:
            return (f"spec.scaling.scaleToZero.enabled is true, but with spec.routing.mode "
                    f"inferencePool the endpoint picker routes to the pods and nothing holds "
                    f"a request while there are none: {kept}; use routing.mode ingress or "
                    f"gateway to scale to zero, or set scaleToZero.enabled: false")
        return (f"spec.scaling.scaleToZero.enabled is true, but this operator has no "
                f"activator to hold requests while no replica is Ready: {kept}; {install}, "
                f"or set scaleToZero.enabled: false")
    if routing.activator is ActivatorMode.ALWAYS and not activator:
        return (f"spec.routing.activator is always, but this operator has no activator: "
                f"requests go straight to the pods and the scaler has no arrival counter; "
                f"{install}, or remove spec.routing.activator")
    return None
