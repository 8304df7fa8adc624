"""One cycle's control flow with a scripted query client: what is sent, skipped and counted.

Answers from a real Prometheus are covered in tests/integration/test_prometheus_queries.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from lmscale.metrics import promql
from lmscale.metrics.client import QueryError
from lmscale.metrics.reader import MetricsReader
from lmscale.metrics.results import Metric, Outcome, QueryState, Target
from lmscale.operator_metrics import OperatorMetrics

NOW = 1_700_000_000.0
CHAT = Target("a", "chat", "vllm")


def answer(value: str) -> list[dict[str, Any]]:
    labels = {"namespace": "a", "lmscale_dev_deployment": "chat", "lmscale_engine": "vllm"}
    return [{"metric": labels, "value": [NOW, value]}]


class ScriptedClient:
    """Answers the n-th query with the n-th scripted reply (a result, or an error to raise)."""

    def __init__(self, *replies: Any) -> None:
        self.replies = list(replies)
        self.sent: list[str] = []

    def query(self, text: str, *, now: float) -> Any:
        self.sent.append(text)
        reply = self.replies[min(len(self.sent), len(self.replies)) - 1]
        if isinstance(reply, Exception):
            raise reply
        return reply


def read(client: ScriptedClient, targets: list[Target]) -> tuple[Any, OperatorMetrics]:
    metrics = OperatorMetrics(CollectorRegistry())
    ticks = iter(float(i) for i in range(1000))
    reader = MetricsReader(
        client, promql.QueryContext(), metrics=metrics, timer=lambda: next(ticks)
    )
    return reader.read(targets, now=NOW), metrics


def sample(metrics: OperatorMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_all_answers_ok() -> None:
    snapshot, metrics = read(ScriptedClient(answer("2")), [CHAT])

    got = snapshot.get("a", "chat")
    assert [got.value(m) for m in Metric] == [2.0] * len(Metric)
    assert snapshot.query_count == len(Metric)
    assert (
        sample(metrics, "lmscale_prometheus_query_results_total", metric="waiting", outcome="ok")
        == 1
    )
    assert sample(metrics, "lmscale_prometheus_query_duration_seconds_count", metric="waiting") == 1
    assert sample(metrics, "lmscale_prometheus_query_duration_seconds_sum", metric="waiting") == 1.0


@pytest.mark.parametrize(
    ("kind", "sent"),
    [
        pytest.param("connection", 1, id="connection-stops-the-cycle"),
        pytest.param("timeout", 1, id="timeout-stops-the-cycle"),
        pytest.param("http", len(Metric), id="bad-query-does-not"),
        pytest.param("auth", len(Metric), id="auth-does-not"),
    ],
)
def test_failures(kind: str, sent: int) -> None:
    client = ScriptedClient(QueryError(kind, f"{kind} went wrong"))

    snapshot, metrics = read(client, [CHAT])

    assert len(client.sent) == sent
    states = [s.state for s in snapshot.queries.values()]
    assert states == [QueryState.FAILED] * sent + [QueryState.SKIPPED] * (len(Metric) - sent)
    got = snapshot.get("a", "chat")
    assert [got.value(m) for m in Metric] == [None] * len(Metric)
    assert got.missing[Metric.WAITING] is Outcome.ERROR
    errors = sample(metrics, "lmscale_prometheus_query_errors_total", metric="waiting", kind=kind)
    assert errors == 1
    assert not snapshot.availability("a", "chat").available


def test_one_failing_query_leaves_the_others() -> None:
    client = ScriptedClient(QueryError("http", "bad_data: parse error"), answer("3"))

    snapshot, _ = read(client, [CHAT])

    got = snapshot.get("a", "chat")
    assert (got.waiting, got.running) == (None, 3.0)
    assert snapshot.queries[Metric.WAITING].message == "bad_data: parse error"


def test_an_answer_that_is_not_a_vector_is_a_response_error() -> None:
    snapshot, metrics = read(ScriptedClient([NOW, "1"]), [CHAT])  # a scalar's shape

    assert snapshot.queries[Metric.WAITING].error_kind == "response"
    assert (
        sample(metrics, "lmscale_prometheus_query_errors_total", metric="waiting", kind="response")
        == 1
    )


def test_no_targets_no_queries() -> None:
    client = ScriptedClient(answer("1"))

    snapshot, _ = read(client, [])

    assert client.sent == []
    assert {s.state for s in snapshot.queries.values()} == {QueryState.NOT_NEEDED}


def test_unknown_engine_is_unsupported_not_a_crash() -> None:
    client = ScriptedClient(answer("1"))

    snapshot, _ = read(client, [Target("a", "chat", "triton"), CHAT])

    assert set(snapshot.get("a", "chat").missing.values()) <= {Outcome.UNSUPPORTED}
    assert len(client.sent) == len(Metric)  # for the vLLM target
