"""`spec` of a LanguageModelDeployment: the parts, and the rules that span them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from lmscale.api import schema
from lmscale.api.engine import Engine, EngineKind
from lmscale.api.model import Model
from lmscale.api.networking import Ingress, Service
from lmscale.api.scaling import MAX_REPLICAS, Scaling
from lmscale.api.schema import Rule, StrictInt

GPUS_PER_REPLICA = (1, 2, 4, 8)

GpusPerReplica = Literal["auto"] | StrictInt


def _valid_gpus(value: GpusPerReplica) -> bool:
    return value == "auto" or value in GPUS_PER_REPLICA


class Accelerator(schema.Schema):
    """The GPU type and how many GPUs each replica gets."""

    type: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[a-z0-9][-a-z0-9._]*$",
        description=(
            "GPU catalog key, e.g. nvidia-h100-80gb (`lmscale plan --list-gpus`). Replicas "
            "run only on nodes whose nvidia.com/gpu.product label matches it."
        ),
    )
    gpus_per_replica: GpusPerReplica = Field(
        default="auto",
        description=(
            "GPUs per replica, which is the tensor-parallel degree: auto (the fewest that fit "
            "the model and its KV cache, from the capacity planner) or 1, 2, 4 or 8."
        ),
    )

    @field_validator("gpus_per_replica", mode="before")
    @classmethod
    def _auto_or_number(cls, value: object) -> object:
        # Without this, "2" fails both halves of the union with two unhelpful messages.
        if isinstance(value, str) and value != "auto":
            raise ValueError(f"must be auto or one of 1, 2, 4, 8 (an integer), not {value!r}")
        return value

    rules = (
        Rule(
            cel=(
                "type(self.gpusPerReplica) == string ? self.gpusPerReplica == 'auto' "
                ": self.gpusPerReplica in [1, 2, 4, 8]"
            ),
            message=(
                "accelerator.gpusPerReplica must be auto or a power of two from 1 to 8 "
                "(1, 2, 4, 8): tensor parallelism splits attention heads evenly within one node"
            ),
            check=lambda a: _valid_gpus(a.gpus_per_replica),
            field=".gpusPerReplica",
        ),
    )


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
    model_cache: ModelCache | None = Field(
        default=None,
        description="A PersistentVolumeClaim caching downloaded weights across restarts.",
    )

    rules = (
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
