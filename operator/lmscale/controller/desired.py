"""From a LanguageModelDeployment body to the children it should have, or why it cannot."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

from lmscale import render
from lmscale.api import semantic
from lmscale.api.resource import FieldError, LanguageModelDeployment, parse_spec
from lmscale.api.status import ConditionReason
from lmscale.planner.plan import CapacityPlan


@dataclasses.dataclass(frozen=True)
class Desired:
    lmd: LanguageModelDeployment
    plan: CapacityPlan
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


def desired_state(body: Mapping[str, Any]) -> Desired | Invalid:
    parsed = parse_spec(body.get("spec") or {})
    if isinstance(parsed, list):
        return Invalid(problems=tuple(parsed), reason=ConditionReason.INVALID_FIELD)
    resolution = semantic.resolve(parsed)
    if not resolution.valid or resolution.plan is None:
        return Invalid(problems=resolution.problems, reason=resolution.reason)
    lmd = LanguageModelDeployment(metadata=dict(body["metadata"]), spec=parsed)
    children = render.render_children(lmd, resolution.plan)
    owner = render.owner_reference(body)
    for manifest in children.present():
        manifest["metadata"]["ownerReferences"] = [copy.deepcopy(owner)]
    return Desired(lmd=lmd, plan=resolution.plan, children=children)


def initial_replicas(lmd: LanguageModelDeployment) -> int:
    """Replicas for a Deployment that does not exist yet, before the scaler's first cycle."""
    if not lmd.spec.scaling.enabled:
        return lmd.spec.replicas
    return lmd.spec.scaling.min_replicas
