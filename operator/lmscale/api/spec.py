"""`spec` of a LanguageModelDeployment: the parts, and the rules that span them."""

from __future__ import annotations

import enum
from typing import Literal

from pydantic import Field, field_validator

from lmscale.api import schema
from lmscale.api.engine import Engine, EngineKind
from lmscale.api.model import Model
from lmscale.api.networking import Ingress, Routing, RoutingMode, Service
from lmscale.api.scaling import MAX_REPLICAS, Scaling
from lmscale.api.schema import Rule, StrictInt

GPUS_PER_REPLICA = (1, 2, 4, 8)

GpusPerReplica = Literal["auto"] | StrictInt


def _valid_gpus(value: GpusPerReplica) -> bool:
    return value == "auto" or value in GPUS_PER_REPLICA


GPU_KEY_PATTERN = r"^[a-z0-9][-a-z0-9._]*$"
# Fallback GPU types after the primary: each one is a Deployment, so a short list.
MAX_FALLBACKS = 4
DEFAULT_FALLBACK_AFTER_SECONDS = 60


class Strategy(enum.StrEnum):
    """How replicas are spread over the listed GPU types."""

    ORDERED = "ordered"
    CHEAPEST = "cheapest"


def _auto_or_number(value: object) -> object:
    # Without this, "2" fails both halves of the union with two unhelpful messages.
    if isinstance(value, str) and value != "auto":
        raise ValueError(f"must be auto or one of 1, 2, 4, 8 (an integer), not {value!r}")
    return value


def _gpus_rule(prefix: str) -> Rule:
    return Rule(
        cel=(
            "type(self.gpusPerReplica) == string ? self.gpusPerReplica == 'auto' "
            ": self.gpusPerReplica in [1, 2, 4, 8]"
        ),
        message=(
            f"{prefix}.gpusPerReplica must be auto or a power of two from 1 to 8 "
            "(1, 2, 4, 8): tensor parallelism splits attention heads evenly within one node"
        ),
        check=lambda a: _valid_gpus(a.gpus_per_replica),
        field=".gpusPerReplica",
    )


class Fallback(schema.Schema):
    """A GPU type to run replicas on when the ones before it cannot be scheduled."""

    type: str = Field(
        min_length=1,
        max_length=63,  # also the value of the variant label on its pods
        pattern=GPU_KEY_PATTERN,
        description=(
            "GPU catalog key, e.g. nvidia-a100-80gb. Planned like accelerator.type: a type "
            "that cannot hold the model makes the spec invalid (InvalidSpec names the entry)."
        ),
    )
    gpus_per_replica: GpusPerReplica = Field(
        default="auto",
        description="GPUs per replica on this type: auto or 1, 2, 4 or 8, as for the primary.",
    )
    max_replicas: StrictInt | None = Field(
        default=None,
        ge=0,
        le=MAX_REPLICAS,
        description=(
            "At most this many replicas of this type (a quota or a pool's size). "
            "Default: scaling.maxReplicas."
        ),
    )

    @field_validator("gpus_per_replica", mode="before")
    @classmethod
    def _gpus(cls, value: object) -> object:
        return _auto_or_number(value)

    rules = (_gpus_rule("accelerator.fallbacks[]"),)


class Accelerator(schema.Schema):
    """The GPU type and how many GPUs each replica gets."""

    type: str = Field(
        min_length=1,
        max_length=128,
        pattern=GPU_KEY_PATTERN,
        description=(
            "GPU catalog key, e.g. nvidia-h100-80gb (`lmscale plan --list`). Replicas "
            "run only on nodes whose nvidia.com/gpu.product label matches it."
        ),
    )
    gpus_per_replica: GpusPerReplica = Field(
        default="auto",
        description=(
            "GPUs per replica, which is the tensor-parallel degree: auto (the degree with the "
            "lowest cost per request at the SLO and token mix, among those that hold one "
            "sequence of maxContextLength; status.capacityPlan says why) or 1, 2, 4 or 8."
        ),
    )
    fallbacks: list[Fallback] = Field(
        default_factory=list,
        max_length=MAX_FALLBACKS,
        description=(
            "Other GPU types, in order of preference, that carry the load the primary type "
            "cannot: when its new replicas stay unschedulable for fallbackAfterSeconds, the "
            "missing capacity goes to the next type. Each type runs as its own Deployment "
            "<name>-<type> behind the one Service; the primary keeps the name <name>."
        ),
    )
    strategy: Strategy = Field(
        default=Strategy.ORDERED,
        description=(
            "ordered: the primary type first, then the fallbacks in order. cheapest: the mix "
            "of the listed types with the lowest cost per unit of capacity at the SLO."
        ),
    )
    fallback_after_seconds: StrictInt = Field(
        default=DEFAULT_FALLBACK_AFTER_SECONDS,
        ge=0,
        le=3600,
        description=(
            "How long a type's new replicas may stay unschedulable before the capacity they "
            "miss goes to the next type."
        ),
    )

    @field_validator("gpus_per_replica", mode="before")
    @classmethod
    def _gpus(cls, value: object) -> object:
        return _auto_or_number(value)

    rules = (
        _gpus_rule("accelerator"),
        Rule(
            cel="!has(self.fallbacks) || self.fallbacks.all(f, f.type != self.type)",
            message=(
                "accelerator.fallbacks must not repeat accelerator.type: a fallback is "
                "another GPU type; remove the entry"
            ),
            check=lambda a: all(f.type != a.type for f in a.fallbacks),
            field=".fallbacks",
        ),
        Rule(
            cel=(
                "!has(self.fallbacks) || "
                "self.fallbacks.all(f, self.fallbacks.exists_one(g, g.type == f.type))"
            ),
            message=(
                "accelerator.fallbacks lists a GPU type twice: each type is one Deployment; "
                "keep one entry per type"
            ),
            check=lambda a: len({f.type for f in a.fallbacks}) == len(a.fallbacks),
            field=".fallbacks",
        ),
    )

    def types(self) -> list[str]:
        """Every GPU type listed, the primary first."""
        return [self.type, *(f.type for f in self.fallbacks)]


class Slo(schema.Schema):
    """The latency objective; the autoscaler derives its per-replica target from it."""

    ttft_p95_ms: StrictInt = Field(
        default=1000,
        ge=1,
        le=600_000,
        description="Time to first token, 95th percentile, in milliseconds (queueing included).",
    )
    tpot_p95_ms: StrictInt = Field(
        default=100,
        ge=1,
        le=60_000,
        description="Time per output token after the first, 95th percentile, in milliseconds.",
    )
    mean_prompt_tokens: StrictInt = Field(
        default=1024,
        ge=1,
        le=16_777_216,
        description=(
            "Typical prompt length in tokens, used with the capacity plan to work out how "
            "many requests one replica carries within the SLO."
        ),
    )
    mean_output_tokens: StrictInt = Field(
        default=256,
        ge=1,
        le=16_777_216,
        description=(
            "Typical output length in tokens; also sets how long a replica being removed "
            "waits for in-flight generations."
        ),
    )


class ModelCache(schema.Schema):
    """A PersistentVolumeClaim that keeps downloaded weights across pod restarts."""

    claim_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=schema.DNS_SUBDOMAIN_PATTERN,
        description="An existing claim to mount. Exclusive with size.",
    )
    size: schema.Quantity | None = Field(
        default=None,
        description=(
            "Size of a claim lmscale creates and owns, named <name>-model-cache, e.g. 200Gi. "
            "Exclusive with claimName."
        ),
    )
    storage_class_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        description=(
            "Storage class of the claim lmscale creates (with size). Default: the cluster's."
        ),
    )
    access_mode: Literal["ReadWriteMany", "ReadWriteOnce", "ReadOnlyMany"] = Field(
        default="ReadWriteMany",
        description=(
            "Access mode of the claim lmscale creates. ReadWriteMany lets replicas on "
            "different nodes share it; ReadWriteOnce suits one replica or one node."
        ),
    )
    mount_path: str = Field(
        default="/models",
        max_length=1024,
        pattern=r"^/[^:]*$",
        description="Where the cache is mounted in the engine container; HF_HOME points there.",
    )

    rules = (
        Rule(
            cel="has(self.claimName) != has(self.size)",
            message="modelCache: set exactly one of modelCache.claimName and modelCache.size",
            check=lambda c: (c.claim_name is None) != (c.size is None),
            reason="FieldValueRequired",
        ),
        Rule(
            cel="!has(self.storageClassName) || has(self.size)",
            message=(
                "modelCache.storageClassName applies only to a claim lmscale creates; "
                "set modelCache.size or remove storageClassName"
            ),
            check=lambda c: c.storage_class_name is None or c.size is not None,
            field=".storageClassName",
            reason="FieldValueForbidden",
        ),
    )


def _s3_needs_vllm(spec: LanguageModelDeploymentSpec) -> bool:
    source = spec.model.source
    return (
        source is None or not source.uri.startswith("s3://") or spec.engine.kind is EngineKind.VLLM
    )


class LanguageModelDeploymentSpec(schema.Schema):
    """Desired state, owned by its author (Git): lmscale never writes it."""

    model: Model = Field(description="The model to serve.")
    engine: Engine = Field(
        default_factory=Engine,
        description="The model server of each replica. Default: vLLM.",
    )
    accelerator: Accelerator = Field(
        description="The GPU type and how many GPUs each replica gets."
    )
    slo: Slo = Field(
        default_factory=Slo,
        description="The latency objective the autoscaler keeps.",
    )
    replicas: StrictInt = Field(
        default=1,
        ge=0,
        le=MAX_REPLICAS,
        description=(
            "Replicas when scaling.enabled is false (the scale subresource sets it, so "
            "kubectl scale, an HPA or KEDA can drive it). Ignored while lmscale scales."
        ),
    )
    scaling: Scaling = Field(
        default_factory=Scaling,
        description="Horizontal autoscaling from queue depth, latency and GPU utilisation.",
    )
    service: Service = Field(
        default_factory=Service,
        description="The Service in front of the ready replicas.",
    )
    ingress: Ingress = Field(
        default_factory=Ingress,
        description="An optional Ingress in front of the Service.",
    )
    routing: Routing = Field(
        default_factory=Routing,
        description=(
            "How requests reach the model: the Ingress (default), a Gateway API HTTPRoute, or "
            "an InferencePool with an LLM-aware endpoint picker."),
    )
    model_cache: ModelCache | None = Field(
        default=None,
        description="A PersistentVolumeClaim caching downloaded weights across restarts.",
    )

    rules = (
        Rule(
            cel="!self.ingress.enabled || self.routing.mode == 'ingress'",
            message=(
                "ingress.enabled needs routing.mode ingress; with routing.mode gateway or "
                "inferencePool the HTTPRoute takes the Ingress's place: set ingress.enabled false"),
            check=lambda s: not s.ingress.enabled or s.routing.mode is RoutingMode.INGRESS,
            field=".ingress.enabled",
        ),
        Rule(
            cel=(
                "!has(self.model.source) || !self.model.source.uri.startsWith('s3://') "
                "|| self.engine.kind == 'vllm'"
            ),
            message=(
                "model.source: s3:// sources need engine.kind vllm; "
                "use hf:// or pvc:// for tgi and sglang"
            ),
            check=_s3_needs_vllm,
            field=".model.source.uri",
        ),
    )
