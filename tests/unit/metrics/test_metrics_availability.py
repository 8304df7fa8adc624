"""MetricsAvailable from a snapshot: status, reason and message per deployment."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from lmscale.metrics.results import (
    AvailabilityReason,
    DeploymentMetrics,
    Key,
    Metric,
    MetricsSnapshot,
    Outcome,
    QueryState,
    QueryStatus,
)

W, R, KV, TTFT, GPU = (
    Metric.WAITING,
    Metric.RUNNING,
    Metric.KV_CACHE_USAGE,
    Metric.TTFT_P95,
    Metric.GPU_UTILIZATION,
)


def snapshot(missing: dict[Metric, Outcome], *, error: str = "") -> MetricsSnapshot:
    values = {m: (None if m in missing else 1.0) for m in Metric}
    metrics = DeploymentMetrics.from_values(values, missing)
    state = QueryState.FAILED if error else QueryState.OK
    queries = {m: QueryStatus(m, state, message=error) for m in Metric}
    return MetricsSnapshot(
        now=0.0,
        deployments=MappingProxyType({Key("a", "chat"): metrics}),
        queries=MappingProxyType(queries),
    )


@pytest.mark.parametrize(
    ("missing", "available", "reason"),
    [
        pytest.param({}, True, AvailabilityReason.AVAILABLE, id="everything"),
        pytest.param(
            {KV: Outcome.UNSUPPORTED},
            True,
            AvailabilityReason.AVAILABLE,
            id="unsupported-is-not-missing",
        ),
        pytest.param(
            {TTFT: Outcome.NAN, GPU: Outcome.EMPTY},
            True,
            AvailabilityReason.PARTIAL,
            id="secondary-missing",
        ),
        pytest.param({W: Outcome.EMPTY}, False, AvailabilityReason.NOT_FOUND, id="no-series"),
        pytest.param({W: Outcome.UNMATCHED}, False, AvailabilityReason.NOT_FOUND, id="unmatched"),
        pytest.param({R: Outcome.STALE}, False, AvailabilityReason.STALE, id="stale"),
        pytest.param({W: Outcome.NAN}, False, AvailabilityReason.INVALID, id="nan"),
        pytest.param({W: Outcome.INF}, False, AvailabilityReason.INVALID, id="inf"),
        pytest.param({W: Outcome.DUPLICATE}, False, AvailabilityReason.INVALID, id="duplicate"),
        pytest.param(
            {W: Outcome.ERROR, R: Outcome.SKIPPED},
            False,
            AvailabilityReason.QUERY_FAILED,
            id="prometheus-down",
        ),
        pytest.param(
            {W: Outcome.EMPTY, R: Outcome.STALE},
            False,
            AvailabilityReason.STALE,
            id="stale-reported-before-not-found",
        ),
        pytest.param(
            {W: Outcome.NAN, R: Outcome.ERROR},
            False,
            AvailabilityReason.QUERY_FAILED,
            id="failure-reported-first",
        ),
    ],
)
def test_availability(
    missing: dict[Metric, Outcome], available: bool, reason: AvailabilityReason
) -> None:
    got = snapshot(missing).availability("a", "chat")

    assert (got.available, got.reason) == (available, reason)


def test_message_names_each_missing_metric_and_why() -> None:
    got = snapshot({W: Outcome.STALE, TTFT: Outcome.NAN}).availability("a", "chat")

    assert got.message == (
        "ttft_p95_seconds: NaN (for latency: no requests in the window); waiting: stale sample"
    )


def test_message_carries_the_query_error() -> None:
    got = snapshot({W: Outcome.ERROR}, error="cannot reach http://prom:9090").availability(
        "a", "chat"
    )

    assert got.message == "waiting: error (cannot reach http://prom:9090)"


def test_required_metrics_are_configurable() -> None:
    got = snapshot({TTFT: Outcome.NAN}).availability("a", "chat", required=frozenset({TTFT}))

    assert (got.available, got.reason) == (False, AvailabilityReason.INVALID)


def test_unknown_deployment_has_everything_missing() -> None:
    snap = snapshot({})

    got = snap.get("b", "other")

    assert [got.value(m) for m in Metric] == [None] * len(Metric)
    assert snap.availability("b", "other").reason is AvailabilityReason.NOT_FOUND


def test_query_count_counts_sent_queries_only() -> None:
    queries = {
        W: QueryStatus(W, QueryState.OK),
        R: QueryStatus(R, QueryState.FAILED),
        KV: QueryStatus(KV, QueryState.NOT_NEEDED),
        TTFT: QueryStatus(TTFT, QueryState.SKIPPED),
    }
    snap = MetricsSnapshot(now=0.0, deployments={}, queries=queries)

    assert snap.query_count == 2
