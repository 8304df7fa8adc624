"""The LanguageModelDeployment resource as a whole: names, and parsing a body from the API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ConfigDict, Field, ValidationError

from lmscale.api import schema
from lmscale.api.spec import LanguageModelDeploymentSpec
from lmscale.api.status import ConditionReason, Status

GROUP = "lmscale.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "LanguageModelDeployment"
PLURAL = "languagemodeldeployments"
SINGULAR = "languagemodeldeployment"
SHORT_NAMES = ("lmd", "lmds")
CATEGORIES = ("lmscale",)
CRD_NAME = f"{PLURAL}.{GROUP}"


class LanguageModelDeployment(schema.Schema):
    """One model served on GPUs: replicas, a Service, an optional Ingress, and an autoscaler."""

    model_config = ConfigDict(extra="ignore")

    api_version: str = Field(
        default=API_VERSION,
        alias="apiVersion",
        description=(
            "Versioned schema of this representation; servers convert recognized schemas "
            "to the latest internal value."
        ),
    )
    kind: str = Field(
        default=KIND,
        description="REST resource this object represents; CamelCase.",
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="Standard object metadata.",
    )
    spec: LanguageModelDeploymentSpec = Field(
        description="Desired state: the model, engine, GPU type, SLO and scaling range."
    )
    status: Status | None = Field(
        default=None,
        description="Observed state, written by lmscale.",
    )

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace", ""))


@dataclass(frozen=True)
class FieldError:
    """One problem with a spec: the field, as a dotted path, and what to do about it.

    `reason` is what the InvalidSpec condition reports when this is the first problem.
    """

    path: str
    message: str
    reason: ConditionReason = ConditionReason.INVALID_FIELD

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def parse_spec(spec: Mapping[str, Any]) -> LanguageModelDeploymentSpec | list[FieldError]:
    """Parse `spec` from an API body, or say what is wrong with it, field by field.

    The apiserver already enforces the same rules through the CRD; this catches a resource
    stored under an older CRD, so the operator can report InvalidSpec instead of crashing.
    """
    try:
        return LanguageModelDeploymentSpec.model_validate(dict(spec))
    except ValidationError as error:
        return field_errors(error, prefix="spec")


def field_errors(error: ValidationError, *, prefix: str = "") -> list[FieldError]:
    """pydantic's errors as FieldErrors, with camelCase paths like `spec.scaling.minReplicas`."""
    problems = []
    for item in error.errors(include_url=False):
        parts = [prefix] if prefix else []
        parts += [f"[{p}]" if isinstance(p, int) else str(p) for p in item["loc"]]
        path = ".".join(parts).replace(".[", "[")
        broken = (item.get("ctx") or {}).get("broken")
        if item["type"] == "rule" and broken:
            problems += [
                FieldError(path=path + field, message=message) for field, message in broken
            ]
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            problems.append(FieldError(path=path, message=message))
    return problems
