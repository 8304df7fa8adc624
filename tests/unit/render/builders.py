"""Resources and capacity plans for the render tests, planned by the real planner."""

from __future__ import annotations

from typing import Any

from tests.unit.api.malformed import patched, valid_body

from lmscale import api
from lmscale.api import semantic
from lmscale.planner.plan import CapacityPlan


def lmd(spec_patch: dict[str, Any] | None = None, **metadata: Any) -> api.LanguageModelDeployment:
    body = patched(valid_body(), {"spec": spec_patch or {}})
    body["metadata"].update({"namespace": "team-a", "uid": "0000-1111", **metadata})
    return api.LanguageModelDeployment.model_validate(body)


def planned(
    spec_patch: dict[str, Any] | None = None, **metadata: Any
) -> tuple[api.LanguageModelDeployment, CapacityPlan]:
    resource = lmd(spec_patch, **metadata)
    resolution = semantic.resolve(resource.spec)
    assert resolution.plan is not None, resolution.message
    return resource, resolution.plan
