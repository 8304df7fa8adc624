"""Turn Prometheus instant-vector answers into per-deployment values (pure, no I/O).

Every way a value can be unusable is handled by name, as KEDA's ExecutePromQuery does, and
none of them reads as 0: KEDA's default of reading an empty answer as 0 scaled fleets down
during a Prometheus outage (kedacore/keda#3065). Here a value is a finite float from a fresh
sample, or it is None with the Outcome that explains why.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple, TypeGuard

from lmscale.metrics.results import (
    DeploymentMetrics,
    Key,
    Metric,
    Outcome,
    QueryState,
    QueryStatus,
    Target,
)


class SeriesKey(NamedTuple):
    namespace: str
    name: str
    engine: str


class Labels(NamedTuple):
    """Label names that identify a deployment's series in a query answer."""

    namespace: str
    deployment: str
    engine: str


class MalformedSampleError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class ParsedVector:
    """One query's answer: usable values, rejected series with why, and unreadable series."""

    values: Mapping[SeriesKey, float]
    rejected: Mapping[SeriesKey, Outcome]
    malformed: int = 0
    series: int = 0


def parse_sample(value: Any) -> tuple[float, float]:
    """`[timestamp, "value"]` -> (timestamp, value); Prometheus sends values as strings."""
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise MalformedSampleError(f"expected [timestamp, value], got {value!r}")
    try:
        return float(value[0]), float(value[1])
    except (TypeError, ValueError):
        raise MalformedSampleError(f"unreadable sample {value!r}") from None


def classify(timestamp: float, value: float, *, now: float, max_age: float) -> Outcome:
    """Whether one sample is usable; a sample too far from `now` either way is stale."""
    if math.isnan(value):
        return Outcome.NAN
    if math.isinf(value):
        return Outcome.INF
    if math.isnan(timestamp) or abs(now - timestamp) > max_age:
        return Outcome.STALE
    return Outcome.OK


def series_key(metric: Any, labels: Labels) -> SeriesKey | None:
    """The deployment a series belongs to, or None when it lacks a grouping label."""
    if not isinstance(metric, Mapping):
        return None
    namespace = metric.get(labels.namespace)
    name = metric.get(labels.deployment)
    engine = metric.get(labels.engine)
    if not (_is_label(namespace) and _is_label(name) and _is_label(engine)):
        return None
    return SeriesKey(namespace, name, engine)


def _is_label(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value)


def parse_vector(result: Any, *, labels: Labels, now: float, max_age: float) -> ParsedVector:
    """Values per deployment from an instant-vector `result` list.

    Two series for one deployment are ambiguous (the query should have aggregated them), so
    both are dropped as DUPLICATE rather than one picked at random.
    """
    # A scalar answer is a list too, [timestamp, "value"]: only a list of objects is a vector.
    if not isinstance(result, list) or not all(isinstance(item, Mapping) for item in result):
        raise MalformedSampleError(f"expected a vector (list of series), got {result!r:.100}")
    values: dict[SeriesKey, float] = {}
    rejected: dict[SeriesKey, Outcome] = {}
    seen: set[SeriesKey] = set()
    malformed = 0
    for item in result:
        key = series_key(item.get("metric"), labels)
        if key is None:
            malformed += 1
            continue
        if key in seen:
            values.pop(key, None)
            rejected[key] = Outcome.DUPLICATE
            continue
        seen.add(key)
        try:
            timestamp, value = parse_sample(item.get("value"))
        except MalformedSampleError:
            rejected[key] = Outcome.MALFORMED
            continue
        outcome = classify(timestamp, value, now=now, max_age=max_age)
        if outcome is Outcome.OK:
            values[key] = value
        else:
            rejected[key] = outcome
    return ParsedVector(
        values=MappingProxyType(values),
        rejected=MappingProxyType(rejected),
        malformed=malformed,
        series=len(result),
    )


def _outcome_for(
    target: Target,
    metric: Metric,
    parsed: ParsedVector | None,
    status: QueryStatus,
    supported: Callable[[str, Metric], bool],
) -> tuple[float | None, Outcome]:
    """One target's value of one metric, and why it is what it is."""
    if not supported(target.engine, metric):
        return None, Outcome.UNSUPPORTED
    if status.state is QueryState.FAILED:
        return None, Outcome.ERROR
    if status.state is QueryState.SKIPPED or parsed is None:
        return None, Outcome.SKIPPED
    key = SeriesKey(*target)
    if key in parsed.values:
        return parsed.values[key], Outcome.OK
    return None, parsed.rejected.get(key, Outcome.EMPTY)


def assemble(
    targets: Iterable[Target],
    parsed: Mapping[Metric, ParsedVector | None],
    statuses: Mapping[Metric, QueryStatus],
    *,
    supported: Callable[[str, Metric], bool],
) -> tuple[dict[Key, DeploymentMetrics], dict[Metric, collections.Counter[Outcome]]]:
    """Per-deployment values from every metric's answer, and each outcome counted per metric.

    The counts include series that matched no target (UNMATCHED) and series without the
    grouping labels (MALFORMED), so every series in every answer is accounted for.
    """
    targets = list(dict.fromkeys(targets))
    metrics = tuple(Metric)  # iterating the enum itself costs more than the lookups
    counts = {metric: collections.Counter[Outcome]() for metric in metrics}
    deployments: dict[Key, DeploymentMetrics] = {}
    for target in targets:
        values: dict[Metric, float | None] = {}
        missing: dict[Metric, Outcome] = {}
        for metric in metrics:
            value, outcome = _outcome_for(
                target, metric, parsed.get(metric), statuses[metric], supported
            )
            values[metric] = value
            counts[metric][outcome] += 1
            if value is None:
                missing[metric] = outcome
        deployments[Key(target.namespace, target.name)] = DeploymentMetrics.from_values(
            values, missing
        )
    wanted = {SeriesKey(*t) for t in targets}
    for metric, vector in parsed.items():
        if vector is None:
            continue
        unmatched = len((set(vector.values) | set(vector.rejected)) - wanted)
        counts[metric].update({Outcome.UNMATCHED: unmatched, Outcome.MALFORMED: vector.malformed})
    return deployments, {m: +c for m, c in counts.items() if +c}
