"""The CustomResourceDefinition, generated from the pydantic models.

pydantic's own JSON Schema output uses `$ref`, `anyOf` with null and `title`, none of which a
structural Kubernetes schema accepts, so this walks the models' fields directly and emits
OpenAPI v3 the apiserver takes as is: every node typed, every field described, defaults,
enums and bounds inline, and each model's `Rule`s as `x-kubernetes-validations`.
"""

from __future__ import annotations

import enum
import types
from datetime import datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from lmscale.api import resource, schema


class SchemaError(TypeError):
    """A model uses a construct the generator cannot express in a structural schema."""


# pydantic/annotated-types constraint attribute -> OpenAPI keyword, by schema type.
_STRING_KEYS = {"min_length": "minLength", "max_length": "maxLength", "pattern": "pattern"}
_ARRAY_KEYS = {"min_length": "minItems", "max_length": "maxItems"}
_OBJECT_KEYS = {"min_length": "minProperties", "max_length": "maxProperties"}
_NUMBER_KEYS = {"ge": "minimum", "le": "maximum", "gt": "minimum", "lt": "maximum"}
_KEYS_BY_TYPE = {
    "string": _STRING_KEYS,
    "array": _ARRAY_KEYS,
    "object": _OBJECT_KEYS,
    "integer": _NUMBER_KEYS,
    "number": _NUMBER_KEYS,
}
_SCALARS: dict[Any, dict[str, Any]] = {
    bool: {"type": "boolean"},
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    datetime: {"type": "string", "format": "date-time"},
}


def _constraints(metadata: list[Any]) -> dict[str, Any]:
    """Flatten pydantic's constraint objects into {attribute: value}."""
    found: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, FieldInfo):
            found.update(_constraints(item.metadata))
            continue
        for key in ("min_length", "max_length", "pattern", "ge", "le", "gt", "lt"):
            value = getattr(item, key, None)
            if value is not None:
                found[key] = value
    return found


def _apply(node: dict[str, Any], constraints: dict[str, Any]) -> dict[str, Any]:
    keys = _KEYS_BY_TYPE.get(node.get("type", "string"), {})
    for attribute, value in constraints.items():
        if attribute not in keys:
            raise SchemaError(f"constraint {attribute} does not apply to {node}")
        node[keys[attribute]] = value
        if attribute in ("gt", "lt"):
            node["exclusiveMinimum" if attribute == "gt" else "exclusiveMaximum"] = True
    return node


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    metadata: list[Any] = []
    while get_origin(annotation) is Annotated:
        annotation, *extra = get_args(annotation)
        metadata += extra
    return annotation, metadata


def _int_or_string(members: list[Any]) -> dict[str, Any]:
    """A union of an integer and a string: Kubernetes' int-or-string, like a Quantity."""
    node: dict[str, Any] = {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": True,
    }
    for member in members:
        base, metadata = _unwrap(member)
        if base is str:
            node.update(_apply({"type": "string"}, _constraints(metadata)))
            del node["type"]
    return node


def type_schema(annotation: Any, metadata: list[Any] | None = None) -> dict[str, Any]:
    """The structural schema of one type, with its constraints."""
    annotation, inner = _unwrap(annotation)
    constraints = _constraints([*inner, *(metadata or [])])
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return type_schema(members[0], metadata)
        kinds = {_scalar_kind(m) for m in members}
        if kinds != {"integer", "string"}:
            raise SchemaError(f"cannot express the union {annotation}")
        return _int_or_string(members)
    if origin is Literal:
        values = list(get_args(annotation))
        if not all(isinstance(v, str) for v in values):
            raise SchemaError(f"only string literals are supported: {annotation}")
        return _apply({"type": "string", "enum": values}, constraints)
    if origin is list:
        (item,) = get_args(annotation)
        return _apply({"type": "array", "items": type_schema(item)}, constraints)
    if origin is dict:
        _, value = get_args(annotation)
        if value is Any:
            node = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        else:
            node = {"type": "object", "additionalProperties": type_schema(value)}
        return _apply(node, constraints)
    if isinstance(annotation, type) and issubclass(annotation, schema.Schema):
        return model_schema(annotation)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _apply({"type": "string", "enum": [m.value for m in annotation]}, constraints)
    if annotation in _SCALARS:
        return _apply(dict(_SCALARS[annotation]), constraints)
    raise SchemaError(f"cannot express the type {annotation!r}")


def _scalar_kind(annotation: Any) -> str:
    base, _ = _unwrap(annotation)
    if get_origin(base) is Literal:
        return "string" if all(isinstance(v, str) for v in get_args(base)) else "other"
    return {int: "integer", str: "string"}.get(base, "other")


def _wire(value: Any) -> Any:
    """A Python default as it appears on the wire."""
    if isinstance(value, BaseModel):
        # Written out in full: the apiserver checks an object default against the object's
        # CEL rules as it stands, without first filling in the nested defaults.
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list):
        return [_wire(v) for v in value]
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    return value


def _default(field: FieldInfo) -> Any:
    factory = field.default_factory
    value = field.default if factory is None else factory()  # type: ignore[call-arg]
    if value is PydanticUndefined or value is None or value == [] or value == {}:
        return PydanticUndefined  # nothing worth storing in every object
    return _wire(value)


def field_schema(owner: type[BaseModel], name: str, field: FieldInfo) -> dict[str, Any]:
    """The schema of one property: type, constraints, description, default, extras."""
    if not field.description:
        raise SchemaError(f"{owner.__name__}.{name} has no description")
    node: dict[str, Any] = {"description": " ".join(field.description.split())}
    node.update(type_schema(field.annotation, field.metadata))
    default = _default(field)
    if default is not PydanticUndefined:
        node["default"] = default
    if isinstance(field.json_schema_extra, dict):
        node.update(field.json_schema_extra)
    return node


def model_schema(model: type[schema.Schema]) -> dict[str, Any]:
    """The schema of a model: its properties, required fields and cross-field rules."""
    properties = {}
    required = []
    for name, field in model.model_fields.items():
        alias = field.alias or name
        properties[alias] = field_schema(model, name, field)
        if field.is_required():
            required.append(alias)
    node: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        node["required"] = required
    if model.rules:
        node["x-kubernetes-validations"] = [rule.to_crd() for rule in model.rules]
    return node


def openapi_schema() -> dict[str, Any]:
    """The openAPIV3Schema of the resource."""
    root = model_schema(resource.LanguageModelDeployment)
    # The apiserver owns metadata's schema; a CRD may only say that it is an object.
    root["properties"]["metadata"] = {"type": "object"}
    for key in ("apiVersion", "kind"):
        root["properties"][key].pop("default", None)
    root["required"] = ["spec"]
    root["description"] = (
        "LanguageModelDeployment serves one large language model on GPUs: lmscale plans the "
        "GPUs a replica needs, runs the replicas as a Deployment on nodes with that GPU type, "
        "puts a Service and an optional Ingress in front, and scales the replicas from queue "
        "depth, latency and GPU utilisation read from Prometheus."
    )
    return root


PRINTER_COLUMNS = [
    {"name": "Model", "type": "string", "jsonPath": ".spec.model.name",
     "description": "Model id the engine serves."},
    {"name": "GPU", "type": "string", "jsonPath": ".spec.accelerator.type",
     "description": "GPU type of the replicas."},
    {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas",
     "description": "Replicas that serve."},
    {"name": "Desired", "type": "integer", "jsonPath": ".status.desiredReplicas",
     "description": "Replicas the autoscaler asks for."},
    {"name": "Queue", "type": "number", "jsonPath": ".status.metrics.waiting",
     "description": "Requests waiting in the engines."},
    {"name": "URL", "type": "string", "jsonPath": ".status.url",
     "description": "Where clients reach the model."},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Fleet", "type": "string", "priority": 1, "jsonPath": ".status.fleet.types",
     "description": "Replicas per GPU type, with accelerator.fallbacks."},
    {"name": "Reason", "type": "string", "priority": 1,
     "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
     "description": "Why the deployment is or is not ready."},
]  # fmt: skip


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition as a manifest."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": resource.CRD_NAME,
            "labels": {"app.kubernetes.io/name": "lmscale", "app.kubernetes.io/part-of": "lmscale"},
        },
        "spec": {
            "group": resource.GROUP,
            "names": {
                "kind": resource.KIND,
                "listKind": f"{resource.KIND}List",
                "plural": resource.PLURAL,
                "singular": resource.SINGULAR,
                "shortNames": list(resource.SHORT_NAMES),
                "categories": list(resource.CATEGORIES),
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": resource.VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                }
            ],
        },
    }


HEADER = "# Generated from lmscale.api by `lmscale crd --write crds`. Do not edit by hand.\n"


def crd_yaml() -> str:
    """The CRD as the YAML committed under crds/ and shipped in the chart."""
    return HEADER + yaml.safe_dump(crd(), sort_keys=False, width=100, allow_unicode=True)


def crd_filename() -> str:
    """File name under crds/: <group>_<plural>.yaml, as controller-gen names them."""
    return f"{resource.GROUP}_{resource.PLURAL}.yaml"
