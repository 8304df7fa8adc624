"""`status` of a LanguageModelDeployment: written by lmscale only, read by people and Argo CD."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import Field

from lmscale.api import schema
from lmscale.api.plan_status import CapacityPlanStatus
from lmscale.api.schema import StrictInt


class ConditionType(enum.StrEnum):
    """The conditions lmscale reports; each answers one question about the deployment."""

    READY = "Ready"  # do enough replicas serve?
    PROGRESSING = "Progressing"  # is a rollout or a scale change under way?
    DEGRADED = "Degraded"  # are replicas failing (crash loops, lost pods)?
    SCHEDULABLE = "Schedulable"  # can replicas find a node with the GPU type?
    METRICS_AVAILABLE = "MetricsAvailable"  # does the autoscaler have fresh metrics?
    INVALID_SPEC = "InvalidSpec"  # does the spec fail a check the schema cannot express?


class ConditionStatus(enum.StrEnum):
    """metav1.ConditionStatus."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionReason(enum.StrEnum):
    """Every reason lmscale puts on a condition: one word a machine can match on."""

    # Ready
    AVAILABLE = "Available"
    REPLICAS_NOT_READY = "ReplicasNotReady"
    SCALED_TO_ZERO = "ScaledToZero"
    DEPLOYMENT_PENDING = "DeploymentPending"
    # Progressing
    RECONCILED = "Reconciled"
    ROLLING_OUT = "RollingOut"
    SCALING = "Scaling"
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    # Degraded
    AS_EXPECTED = "AsExpected"
    CRASH_LOOPING = "CrashLooping"
    REPLICAS_FAILING = "ReplicasFailing"
    # Schedulable
    SCHEDULED = "Scheduled"
    UNSCHEDULABLE = "Unschedulable"
    # MetricsAvailable
    METRICS_FRESH = "MetricsFresh"
    METRICS_MISSING = "MetricsMissing"
    METRICS_STALE = "MetricsStale"
    PROMETHEUS_ERROR = "PrometheusError"
    SCALING_DISABLED = "ScalingDisabled"
    CALIBRATING = "Calibrating"
    ACTIVATOR_REPORTING = "ActivatorReporting"  # no Ready replica: the activator's queue
    # InvalidSpec (and Ready=False while the spec is invalid)
    SPEC_VALID = "SpecValid"
    INVALID_FIELD = "InvalidField"
    UNKNOWN_ARCHITECTURE = "UnknownArchitecture"
    UNKNOWN_GPU_TYPE = "UnknownGpuType"
    CONTEXT_TOO_LONG = "ContextTooLong"
    DOES_NOT_FIT = "DoesNotFit"
    INVALID_SPEC = "InvalidSpec"


class Condition(schema.StatusSchema):
    """One observation about the deployment, as metav1.Condition."""

    type: ConditionType = Field(description="Which question this condition answers.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="One CamelCase word for the last transition, for machines.",
    )
    message: str = Field(
        default="",
        max_length=32768,
        description="What happened, and what to do about it, for people.",
    )
    last_transition_time: datetime = Field(
        description="When status last changed (not reason or message)."
    )
    observed_generation: StrictInt | None = Field(
        default=None, ge=0, description="metadata.generation this condition was computed from."
    )


class Metrics(schema.StatusSchema):
    """What the autoscaler last read from Prometheus, summed or averaged over ready replicas."""

    waiting: float | None = Field(
        default=None, ge=0, description="Requests queued in the engines, summed over replicas."
    )
    running: float | None = Field(
        default=None, ge=0, description="Requests being generated, summed over replicas."
    )
    kv_cache_usage: float | None = Field(
        default=None, ge=0, le=1, description="Mean KV-cache use over replicas, 0 to 1."
    )
    ttft_p95_seconds: float | None = Field(
        default=None, ge=0, description="Time to first token, 95th percentile, in seconds."
    )
    tpot_p95_seconds: float | None = Field(
        default=None, ge=0,
        description="Time per output token (inter-token latency), 95th percentile, in seconds.",
    )
    gpu_utilization: float | None = Field(
        default=None, ge=0, le=1, description="Mean GPU utilisation over replicas (DCGM), 0 to 1."
    )
    prompt_tokens_per_second: float | None = Field(
        default=None, ge=0, description="Prompt tokens prefilled per second, summed over replicas."
    )
    completions_per_second: float | None = Field(
        default=None, ge=0, description="Requests finished per second, summed over replicas."
    )
    observed_at: datetime | None = Field(default=None, description="When these values were read.")


class FleetVariant(schema.StatusSchema):
    """One GPU type of a fleet with fallbacks, as the autoscaler last saw and sized it."""

    type: str | None = Field(default=None, max_length=253, description="Catalog GPU type.")
    deployment: str | None = Field(
        default=None, max_length=253, description="The Deployment of this type's replicas."
    )
    replicas: StrictInt | None = Field(
        default=None, ge=0, description="Replicas the autoscaler asks of this type."
    )
    ready_replicas: StrictInt | None = Field(
        default=None, ge=0, description="This type's replicas that serve."
    )
    unschedulable_replicas: StrictInt | None = Field(
        default=None, ge=0, description="This type's pods the scheduler cannot place."
    )
    units_per_replica: float | None = Field(
        default=None, ge=0,
        description="Capacity of one replica in replicas of the primary type (the ratio of "
                    "their calibrated targets).",
    )
    starved: bool | None = Field(
        default=None,
        description="Pods unschedulable for accelerator.fallbackAfterSeconds: the capacity "
                    "it misses goes to the next type.",
    )


class Fleet(schema.StatusSchema):
    """The GPU types in use, with accelerator.fallbacks."""

    types: str | None = Field(
        default=None, max_length=1024,
        description="Replicas per GPU type the autoscaler asks for, e.g. "
                    "nvidia-h100-80gb=8,nvidia-a100-80gb=4.",
    )
    cost_per_hour: float | None = Field(
        default=None, ge=0,
        description="Catalog price of an hour of the placed replicas of every type.",
    )
    message: str | None = Field(
        default=None, max_length=4096, description="How the capacity was spread, and why."
    )
    variants: list[FleetVariant] = Field(
        default_factory=list, max_length=8, description="Each GPU type, the primary first."
    )


class Status(schema.StatusSchema):
    """Observed state; lmscale is its only writer."""

    observed_generation: StrictInt | None = Field(
        default=None, ge=0, description="metadata.generation that status describes."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=32,
        description="Ready, Progressing, Degraded, Schedulable, MetricsAvailable and InvalidSpec.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    replicas: StrictInt | None = Field(
        default=None, ge=0, description="Replicas that exist (pods of the current Deployment)."
    )
    ready_replicas: StrictInt | None = Field(
        default=None, ge=0, description="Replicas that pass their readiness probe and serve."
    )
    desired_replicas: StrictInt | None = Field(
        default=None, ge=0, description="Replicas the autoscaler (or spec.replicas) asks for."
    )
    selector: str | None = Field(
        default=None,
        max_length=1024,
        description="Label selector of the replicas' pods, for the scale subresource.",
    )
    url: str | None = Field(
        default=None,
        max_length=2048,
        description=(
            "Where clients reach the model: http(s)://<ingress host> when an Ingress is "
            "enabled, else the Service's cluster DNS name and port."
        ),
    )
    capacity_plan: CapacityPlanStatus | None = Field(
        default=None,
        description=(
            "The capacity planner's result for one replica (GPUs, memory, KV-cache tokens, "
            "throughput, autoscaling target). The same figures as `lmscale plan -o json`, "
            "in the API's camelCase."
        ),
    )
    metrics: Metrics | None = Field(
        default=None, description="What the autoscaler last read from Prometheus."
    )
    fleet: Fleet | None = Field(
        default=None,
        description="With accelerator.fallbacks: the replicas of each GPU type and their cost.",
    )
    last_scale_time: datetime | None = Field(
        default=None, description="When the autoscaler last changed the replicas."
    )
    scaling: dict[str, Any] | None = Field(
        default=None,
        description=(
            "The autoscaler's memory (recent recommendations, scale events, learned start-up "
            "time), kept here so that a restarted operator decides as the last one would."
        ),
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    kopf: dict[str, Any] | None = Field(
        default=None,
        description="The operator framework's handler progress; not for people.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    last_scale_reason: str | None = Field(
        default=None,
        max_length=32768,
        description="Why it did, e.g. 'scaled 2 -> 4: 37 waiting requests, target 8 per replica'.",
    )


def find_condition(conditions: Sequence[Condition], type_: ConditionType) -> Condition | None:
    """The condition of that type, if reported."""
    return next((c for c in conditions if c.type is type_), None)


def set_condition(conditions: Sequence[Condition], new: Condition) -> list[Condition]:
    """Replace the condition of `new.type`, keeping its lastTransitionTime if status is unchanged.

    Conditions keep their order so that a status patch changes as little as possible.
    """
    old = find_condition(conditions, new.type)
    if old is not None and old.status is new.status:
        new = new.model_copy(update={"last_transition_time": old.last_transition_time})
    if old is None:
        return [*conditions, new]
    return [new if c.type is new.type else c for c in conditions]
