"""The base of every API model: camelCase aliases, cross-field rules, and strict scalar types.

A cross-field rule is written once, as a `Rule` holding both its CEL expression (which the
generated CRD hands to the apiserver) and the same check in Python (which pydantic runs when
the operator parses a resource). Keeping the two side by side is what lets the models stay the
single source of truth for validation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

# Scalars the apiserver would never coerce: "3" is not an integer and "true" is not a boolean.
StrictInt = Annotated[int, Strict()]
StrictBool = Annotated[bool, Strict()]

# A Kubernetes resource quantity ("8Gi", "500m", 2), as core/v1 validates it.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
Quantity = StrictInt | Annotated[str, Field(pattern=QUANTITY_PATTERN, max_length=64)]

# RFC 1123 DNS subdomain, the name rule for most Kubernetes objects.
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

RuleReason = Literal["FieldValueInvalid", "FieldValueRequired", "FieldValueForbidden"]


@dataclass(frozen=True)
class Rule:
    """One cross-field rule: CEL for the apiserver, `check` for pydantic, one message for both.

    `field` is the path of the offending field relative to the object the rule sits on (CEL's
    `fieldPath`, e.g. ".minReplicas"), so that errors from either side name the field.
    """

    cel: str
    message: str
    check: Callable[[Any], bool]
    field: str | None = None
    reason: RuleReason = "FieldValueInvalid"

    def to_crd(self) -> dict[str, str]:
        """The `x-kubernetes-validations` entry."""
        entry = {"rule": self.cel, "message": self.message}
        if self.field:
            entry["fieldPath"] = self.field
        entry["reason"] = self.reason
        return entry


class Schema(BaseModel):
    """Base of the spec models: immutable, camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        protected_namespaces=(),
        use_enum_values=False,
    )

    rules: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="after")
    def _check_rules(self) -> Schema:
        broken = [rule for rule in type(self).rules if not rule.check(self)]
        if broken:
            # One error per model (pydantic's limit); ctx keeps each rule's field for FieldErrors.
            raise PydanticCustomError(
                "rule",
                "{message}",
                {
                    "message": "; ".join(rule.message for rule in broken),
                    "broken": [(rule.field or "", rule.message) for rule in broken],
                },
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """The wire form: camelCase keys, enums as strings, unset optional fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class StatusSchema(Schema):
    """Base of the status models: mutable, and tolerant of fields a newer operator wrote."""

    model_config = ConfigDict(extra="ignore", frozen=False)
