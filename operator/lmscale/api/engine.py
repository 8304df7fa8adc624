"""`spec.engine`: the model server that runs in each replica."""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

from pydantic import Field

from lmscale.api import schema
from lmscale.api.schema import Quantity, Rule, StrictInt

GPU_RESOURCE = "nvidia.com/gpu"


class EngineKind(enum.StrEnum):
    """The model server; it decides the command line, the probes and the metric names."""

    VLLM = "vllm"
    TGI = "tgi"
    SGLANG = "sglang"


class EnvVar(schema.Schema):
    """One environment variable of the engine container, as in core/v1 EnvVar."""

    name: str = Field(
        min_length=1,
        max_length=256,
        pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$",
        description="Variable name.",
    )
    value: str | None = Field(
        default=None, max_length=32768, description="Literal value. Exclusive with valueFrom."
    )
    value_from: dict[str, Any] | None = Field(
        default=None,
        description=(
            "Source of the value, as core/v1 EnvVarSource (secretKeyRef, configMapKeyRef, "
            "fieldRef, resourceFieldRef), e.g. a Hugging Face token from a Secret. "
            "Exclusive with value."
        ),
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )

    rules = (
        Rule(
            cel="!(has(self.value) && has(self.valueFrom))",
            message="engine.env: set value or valueFrom, not both",
            check=lambda e: e.value is None or e.value_from is None,
            field=".valueFrom",
            reason="FieldValueForbidden",
        ),
    )


ResourceMap = dict[Annotated[str, Field(max_length=253)], Quantity]


class Toleration(schema.Schema):
    """A taint the replicas' pods tolerate, as in core/v1 Toleration (nvidia.com/gpu is
    always tolerated)."""

    key: str | None = Field(default=None, max_length=317, description="Taint key; empty with "
                            "operator Exists matches every taint.")
    operator: Literal["Exists", "Equal"] = Field(default="Equal",
                                                 description="Exists or Equal (to value).")
    value: str | None = Field(default=None, max_length=63, description="Taint value for Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to match; empty matches all effects.")
    toleration_seconds: StrictInt | None = Field(
        default=None, description="NoExecute only: how long the pod stays bound after the "
        "taint appears.")

    rules = (
        Rule(
            cel="!(self.operator == 'Exists' && has(self.value))",
            message="engine.tolerations: operator Exists takes no value; remove value or use Equal",
            check=lambda t: not (t.operator == "Exists" and t.value is not None),
            field=".value",
            reason="FieldValueForbidden",
        ),
    )


def _no_gpu(resources: ResourceMap | None) -> bool:
    return resources is None or GPU_RESOURCE not in resources


class Resources(schema.Schema):
    """CPU, memory and other resources of the engine container; GPUs come from the accelerator."""

    requests: ResourceMap | None = Field(
        default=None,
        description=(
            "Minimum resources, e.g. {cpu: '8', memory: 64Gi}. Leave nvidia.com/gpu out: "
            "lmscale sets it from the accelerator."
        ),
        json_schema_extra={"maxProperties": 32},
    )
    limits: ResourceMap | None = Field(
        default=None,
        description=(
            "Maximum resources, e.g. {memory: 96Gi}. Leave nvidia.com/gpu out: "
            "lmscale sets it from the accelerator."
        ),
        json_schema_extra={"maxProperties": 32},
    )

    rules = (
        Rule(
            cel="!has(self.requests) || !('nvidia.com/gpu' in self.requests)",
            message=(
                "engine.resources.requests must not set nvidia.com/gpu; "
                "set accelerator.gpusPerReplica instead"
            ),
            check=lambda r: _no_gpu(r.requests),
            field=".requests",
            reason="FieldValueForbidden",
        ),
        Rule(
            cel="!has(self.limits) || !('nvidia.com/gpu' in self.limits)",
            message=(
                "engine.resources.limits must not set nvidia.com/gpu; "
                "set accelerator.gpusPerReplica instead"
            ),
            check=lambda r: _no_gpu(r.limits),
            field=".limits",
            reason="FieldValueForbidden",
        ),
    )


class Engine(schema.Schema):
    """The model server of each replica."""

    kind: EngineKind = Field(
        default=EngineKind.VLLM,
        description="Model server: vllm, tgi (Hugging Face text-generation-inference) or sglang.",
    )
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description=(
            "Container image. Default per kind: vllm/vllm-openai, "
            "ghcr.io/huggingface/text-generation-inference or lmsysorg/sglang, at the "
            "version this lmscale release was tested with."
        ),
    )
    args: list[Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=list,
        max_length=128,
        description=(
            "Extra command-line arguments, appended after the ones lmscale sets (model, "
            "tensor-parallel size, max model length, served model name, port). Do not repeat "
            "those: set the spec fields they come from."
        ),
    )
    env: list[EnvVar] = Field(
        default_factory=list,
        max_length=128,
        description=(
            "Environment variables of the engine container, e.g. HF_TOKEN from a Secret. "
            "They override lmscale's own (HF_HOME) when the names clash."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    port: StrictInt = Field(
        default=8000,
        ge=1,
        le=65535,
        description=(
            "Port the engine serves HTTP on: the OpenAI-compatible API, /health and /metrics."
        ),
    )
    resources: Resources = Field(
        default_factory=Resources,
        description="CPU, memory and other resources of the engine container, besides its GPUs.",
    )
    tolerations: list[Toleration] = Field(
        default_factory=list,
        max_length=32,
        description=(
            "Taints the replicas' pods tolerate besides nvidia.com/gpu, e.g. a dedicated "
            "GPU pool's or spot nodes' taint."
        ),
    )
    pod_annotations: dict[str, Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict,
        max_length=64,
        description=(
            "Annotations added to every replica's pod, e.g. for a service mesh or a log "
            "shipper. lmscale's own (default container, Prometheus scrape hints) win on clashes."
        ),
    )
