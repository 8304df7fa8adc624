"""What one scaling cycle learned from Prometheus, per deployment and per query.

Pure data. A value is a float or None, and a None always carries the outcome that made it
missing, so the scaler can tell "Prometheus is down" from "this model has no traffic" when it
sets the MetricsAvailable condition. Nothing here ever turns missing data into 0.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple


class Metric(enum.StrEnum):
    """The values the policy reads; names match `lmscale.policy.Observation`'s fields."""

    WAITING = "waiting"
    RUNNING = "running"
    KV_CACHE_USAGE = "kv_cache_usage"
    TTFT_P95 = "ttft_p95_seconds"
    TPOT_P95 = "tpot_p95_seconds"
    GPU_UTILIZATION = "gpu_utilization"
    PROMPT_TOKENS_RATE = "prompt_tokens_per_second"
    COMPLETIONS_RATE = "completions_per_second"
    REPORTING_REPLICAS = "reporting_replicas"  # pods whose load series are fresh


# The load the policy scales on; without both there is nothing to decide from.
LOAD_METRICS = frozenset({Metric.WAITING, Metric.RUNNING})


class Outcome(enum.StrEnum):
    """What happened to one deployment's value of one metric in one cycle."""

    OK = "ok"
    EMPTY = "empty"  # the query answered, without a series for this deployment
    NAN = "nan"
    INF = "inf"
    STALE = "stale"  # sample timestamp too far from `now`
    DUPLICATE = "duplicate"  # several series for one deployment: ambiguous, so dropped
    MALFORMED = "malformed"  # a series without the grouping labels or a readable value
    UNMATCHED = "unmatched"  # a series for no deployment we were asked about
    ERROR = "error"  # the query failed
    SKIPPED = "skipped"  # not sent: Prometheus already failed this cycle
    UNSUPPORTED = "unsupported"  # the engine does not export this metric


class QueryState(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    NOT_NEEDED = "not_needed"  # no deployment's engine exports this metric


class Target(NamedTuple):
    """A LanguageModelDeployment the scaler wants metrics for."""

    namespace: str
    name: str
    engine: str  # spec.engine.kind: vllm | tgi | sglang


class Key(NamedTuple):
    namespace: str
    name: str


@dataclasses.dataclass(frozen=True)
class DeploymentMetrics:
    """One deployment's values; None when missing or stale, with the reason in `missing`."""

    waiting: float | None = None
    running: float | None = None
    kv_cache_usage: float | None = None
    ttft_p95_seconds: float | None = None
    tpot_p95_seconds: float | None = None  # time per output token (inter-token latency)
    gpu_utilization: float | None = None  # 0..1, mean over the GPUs of serving pods
    prompt_tokens_per_second: float | None = None  # prefilled, summed over the pods
    completions_per_second: float | None = None  # requests finished, summed over the pods
    reporting_replicas: float | None = None  # pods that reported load (HPA's missing-pod rules)
    missing: Mapping[Metric, Outcome] = dataclasses.field(
        default_factory=lambda: MappingProxyType({})
    )

    @classmethod
    def from_values(
        cls, values: Mapping[Metric, float | None], missing: Mapping[Metric, Outcome]
    ) -> DeploymentMetrics:
        return cls(
            waiting=values.get(Metric.WAITING),
            running=values.get(Metric.RUNNING),
            kv_cache_usage=values.get(Metric.KV_CACHE_USAGE),
            ttft_p95_seconds=values.get(Metric.TTFT_P95),
            tpot_p95_seconds=values.get(Metric.TPOT_P95),
            gpu_utilization=values.get(Metric.GPU_UTILIZATION),
            prompt_tokens_per_second=values.get(Metric.PROMPT_TOKENS_RATE),
            completions_per_second=values.get(Metric.COMPLETIONS_RATE),
            reporting_replicas=values.get(Metric.REPORTING_REPLICAS),
            missing=MappingProxyType(dict(missing)),
        )

    def value(self, metric: Metric) -> float | None:
        value: float | None = getattr(self, metric.value)
        return value


@dataclasses.dataclass(frozen=True)
class QueryStatus:
    """How one metric's query went this cycle."""

    metric: Metric
    state: QueryState
    query: str = ""
    message: str = ""
    error_kind: str | None = None  # connection | timeout | http | auth | response
    duration_seconds: float = 0.0
    series: int = 0  # series in the answer, accepted or not

    @property
    def ok(self) -> bool:
        return self.state in (QueryState.OK, QueryState.NOT_NEEDED)


class AvailabilityReason(enum.StrEnum):
    """Reasons for the MetricsAvailable condition."""

    AVAILABLE = "MetricsAvailable"
    PARTIAL = "SomeMetricsMissing"
    QUERY_FAILED = "PrometheusQueryFailed"
    STALE = "MetricsStale"
    INVALID = "InvalidMetricValues"
    NOT_FOUND = "MetricsNotFound"


class Availability(NamedTuple):
    """Status, reason and message for the MetricsAvailable condition."""

    available: bool
    reason: AvailabilityReason
    message: str


_REASON_BY_OUTCOME = {
    Outcome.ERROR: AvailabilityReason.QUERY_FAILED,
    Outcome.SKIPPED: AvailabilityReason.QUERY_FAILED,
    Outcome.STALE: AvailabilityReason.STALE,
    Outcome.NAN: AvailabilityReason.INVALID,
    Outcome.INF: AvailabilityReason.INVALID,
    Outcome.DUPLICATE: AvailabilityReason.INVALID,
    Outcome.MALFORMED: AvailabilityReason.INVALID,
}
# When several load metrics are missing for different causes, report the most actionable.
_REASON_PRIORITY = (
    AvailabilityReason.QUERY_FAILED,
    AvailabilityReason.STALE,
    AvailabilityReason.INVALID,
    AvailabilityReason.NOT_FOUND,
)


@dataclasses.dataclass(frozen=True)
class MetricsSnapshot:
    """One cycle's answer: values per deployment and the status of each query."""

    now: float
    deployments: Mapping[Key, DeploymentMetrics]
    queries: Mapping[Metric, QueryStatus]

    @property
    def query_count(self) -> int:
        """Queries actually sent; independent of the number of deployments."""
        return sum(
            1 for s in self.queries.values() if s.state in (QueryState.OK, QueryState.FAILED)
        )

    def get(self, namespace: str, name: str) -> DeploymentMetrics:
        """Values for one deployment; one we were not asked about has everything missing."""
        found = self.deployments.get(Key(namespace, name))
        if found is not None:
            return found
        return DeploymentMetrics(missing=MappingProxyType(dict.fromkeys(Metric, Outcome.EMPTY)))

    def availability(
        self, namespace: str, name: str, *, required: frozenset[Metric] = LOAD_METRICS
    ) -> Availability:
        """MetricsAvailable for one deployment: true when every required metric has a value."""
        metrics = self.get(namespace, name)
        missing = {m: o for m, o in metrics.missing.items() if o is not Outcome.UNSUPPORTED}
        if not missing:
            return Availability(True, AvailabilityReason.AVAILABLE, "all metrics available")
        message = "; ".join(self._describe(m, o) for m, o in sorted(missing.items()))
        lacking = {m: o for m, o in missing.items() if m in required}
        if not lacking:
            return Availability(True, AvailabilityReason.PARTIAL, message)
        reasons = {
            _REASON_BY_OUTCOME.get(o, AvailabilityReason.NOT_FOUND) for o in lacking.values()
        }
        reason = next(r for r in _REASON_PRIORITY if r in reasons)
        return Availability(False, reason, message)

    def _describe(self, metric: Metric, outcome: Outcome) -> str:
        status = self.queries.get(metric)
        if outcome in (Outcome.ERROR, Outcome.SKIPPED) and status is not None and status.message:
            return f"{metric}: {outcome} ({status.message})"
        return f"{metric}: {_OUTCOME_TEXT.get(outcome, str(outcome))}"


_OUTCOME_TEXT = {
    Outcome.EMPTY: "no series",
    Outcome.NAN: "NaN (for latency: no requests in the window)",
    Outcome.INF: "infinite value",
    Outcome.STALE: "stale sample",
    Outcome.DUPLICATE: "several series for one deployment",
    Outcome.MALFORMED: "malformed series",
    Outcome.ERROR: "query failed",
    Outcome.SKIPPED: "query not sent, Prometheus failed earlier in the cycle",
}
