"""Reading Prometheus answers into per-deployment values: pure functions, no server."""

from __future__ import annotations

import math
from typing import Any

import pytest

from lmscale.metrics import parse
from lmscale.metrics.results import Key, Metric, Outcome, QueryState, QueryStatus, Target

NOW = 1_700_000_000.0
LABELS = parse.Labels("namespace", "lmscale_dev_deployment", "lmscale_engine")


def series(
    value: Any, *, ts: float = NOW, ns: str = "a", dep: str = "chat", engine: str = "vllm"
) -> dict[str, Any]:
    return {
        "metric": {"namespace": ns, "lmscale_dev_deployment": dep, "lmscale_engine": engine},
        "value": [ts, value],
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param([NOW, "3"], (NOW, 3.0), id="string-value"),
        pytest.param([NOW, "0.25"], (NOW, 0.25), id="fraction"),
        pytest.param(["1700000000.5", "1"], (NOW + 0.5, 1.0), id="string-timestamp"),
    ],
)
def test_parse_sample(raw: Any, expected: tuple[float, float]) -> None:
    assert parse.parse_sample(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(None, id="none"),
        pytest.param("3", id="bare-string"),
        pytest.param([NOW], id="short"),
        pytest.param([NOW, "3", "x"], id="long"),
        pytest.param([NOW, "three"], id="unreadable-value"),
        pytest.param([None, "3"], id="no-timestamp"),
    ],
)
def test_parse_sample_rejects_malformed(raw: Any) -> None:
    with pytest.raises(parse.MalformedSampleError):
        parse.parse_sample(raw)


@pytest.mark.parametrize(
    ("timestamp", "value", "expected"),
    [
        pytest.param(NOW, 5.0, Outcome.OK, id="fresh"),
        pytest.param(NOW, 0.0, Outcome.OK, id="zero-is-a-value"),
        pytest.param(NOW - 60, 5.0, Outcome.OK, id="exactly-max-age"),
        pytest.param(NOW - 60.001, 5.0, Outcome.STALE, id="just-older"),
        pytest.param(NOW + 61, 5.0, Outcome.STALE, id="from-the-future"),
        pytest.param(math.nan, 5.0, Outcome.STALE, id="nan-timestamp"),
        pytest.param(NOW, math.nan, Outcome.NAN, id="nan"),
        pytest.param(NOW, math.inf, Outcome.INF, id="inf"),
        pytest.param(NOW, -math.inf, Outcome.INF, id="minus-inf"),
        pytest.param(NOW - 600, math.nan, Outcome.NAN, id="nan-wins-over-stale"),
    ],
)
def test_classify(timestamp: float, value: float, expected: Outcome) -> None:
    assert parse.classify(timestamp, value, now=NOW, max_age=60) is expected


def key(dep: str = "chat", *, ns: str = "a", engine: str = "vllm") -> parse.SeriesKey:
    return parse.SeriesKey(ns, dep, engine)


@pytest.mark.parametrize(
    ("result", "values", "rejected", "malformed"),
    [
        pytest.param([], {}, {}, 0, id="empty-answer"),
        pytest.param([series("4")], {key(): 4.0}, {}, 0, id="one-series"),
        pytest.param(
            [series("4"), series("2", dep="code")],
            {key(): 4.0, key("code"): 2.0},
            {},
            0,
            id="one-series-per-deployment",
        ),
        pytest.param(
            [series("4"), series("4", engine="tgi")],
            {key(): 4.0, key(engine="tgi"): 4.0},
            {},
            0,
            id="engines-kept-apart",
        ),
        pytest.param([series("NaN")], {}, {key(): Outcome.NAN}, 0, id="nan"),
        pytest.param([series("+Inf")], {}, {key(): Outcome.INF}, 0, id="inf"),
        pytest.param([series("1", ts=NOW - 120)], {}, {key(): Outcome.STALE}, 0, id="stale"),
        pytest.param(
            [series("1"), series("2")],
            {},
            {key(): Outcome.DUPLICATE},
            0,
            id="several-series-for-one-deployment",
        ),
        pytest.param(
            [series("1"), series("NaN"), series("2")],
            {},
            {key(): Outcome.DUPLICATE},
            0,
            id="duplicate-after-rejected",
        ),
        pytest.param(
            [{"metric": {"namespace": "a"}, "value": [NOW, "1"]}],
            {},
            {},
            1,
            id="missing-deployment-label",
        ),
        pytest.param(
            [series("1", dep="")],
            {},
            {},
            1,
            id="empty-deployment-label",
        ),
        pytest.param([{"value": [NOW, "1"]}], {}, {}, 1, id="no-labels"),
        pytest.param([series("x")], {}, {key(): Outcome.MALFORMED}, 0, id="unreadable-value"),
    ],
)
def test_parse_vector(
    result: list[Any],
    values: dict[parse.SeriesKey, float],
    rejected: dict[parse.SeriesKey, Outcome],
    malformed: int,
) -> None:
    parsed = parse.parse_vector(result, labels=LABELS, now=NOW, max_age=60)

    assert dict(parsed.values) == values
    assert dict(parsed.rejected) == rejected
    assert parsed.malformed == malformed
    assert parsed.series == len(result)


@pytest.mark.parametrize(
    "result",
    [
        pytest.param({"resultType": "vector"}, id="mapping"),
        pytest.param(None, id="none"),
        pytest.param("[]", id="string"),
        pytest.param([NOW, "1"], id="scalar"),
        pytest.param(["junk", series("1")], id="not-all-series"),
    ],
)
def test_parse_vector_rejects_a_non_vector(result: Any) -> None:
    with pytest.raises(parse.MalformedSampleError):
        parse.parse_vector(result, labels=LABELS, now=NOW, max_age=60)


def statuses(state: QueryState = QueryState.OK) -> dict[Metric, QueryStatus]:
    return {m: QueryStatus(m, state) for m in Metric}


def parsed_for(result: list[Any]) -> parse.ParsedVector:
    return parse.parse_vector(result, labels=LABELS, now=NOW, max_age=60)


def all_supported(engine: str, metric: Metric) -> bool:
    return True


def test_assemble_fills_values_and_reasons() -> None:
    vectors = {m: parsed_for([]) for m in Metric}
    vectors[Metric.WAITING] = parsed_for([series("3"), series("7", dep="other")])
    vectors[Metric.RUNNING] = parsed_for([series("NaN")])
    target = Target("a", "chat", "vllm")

    deployments, counts = parse.assemble([target], vectors, statuses(), supported=all_supported)

    got = deployments[Key("a", "chat")]
    assert (got.waiting, got.running, got.kv_cache_usage) == (3.0, None, None)
    assert dict(got.missing) == {
        Metric.RUNNING: Outcome.NAN,
        Metric.KV_CACHE_USAGE: Outcome.EMPTY,
        Metric.TTFT_P95: Outcome.EMPTY,
        Metric.TPOT_P95: Outcome.EMPTY,
        Metric.GPU_UTILIZATION: Outcome.EMPTY,
        Metric.PROMPT_TOKENS_RATE: Outcome.EMPTY,
        Metric.COMPLETIONS_RATE: Outcome.EMPTY,
        Metric.REPORTING_REPLICAS: Outcome.EMPTY,
    }
    assert counts[Metric.WAITING] == {Outcome.OK: 1, Outcome.UNMATCHED: 1}
    assert counts[Metric.RUNNING] == {Outcome.NAN: 1}


@pytest.mark.parametrize(
    ("state", "supported", "expected"),
    [
        pytest.param(QueryState.FAILED, True, Outcome.ERROR, id="query-failed"),
        pytest.param(QueryState.SKIPPED, True, Outcome.SKIPPED, id="query-skipped"),
        pytest.param(QueryState.FAILED, False, Outcome.UNSUPPORTED, id="unsupported-wins"),
        pytest.param(QueryState.NOT_NEEDED, False, Outcome.UNSUPPORTED, id="not-needed"),
    ],
)
def test_assemble_without_an_answer(state: QueryState, supported: bool, expected: Outcome) -> None:
    vectors: dict[Metric, parse.ParsedVector | None] = dict.fromkeys(Metric)

    deployments, counts = parse.assemble(
        [Target("a", "chat", "tgi")],
        vectors,
        statuses(state),
        supported=lambda engine, metric: supported,
    )

    got = deployments[Key("a", "chat")]
    assert [got.value(m) for m in Metric] == [None] * len(Metric)
    assert set(got.missing.values()) == {expected}
    assert all(c == {expected: 1} for c in counts.values())


def test_assemble_only_reads_the_deployments_own_engine() -> None:
    vectors = {m: parsed_for([series("5", engine="vllm")]) for m in Metric}

    deployments, counts = parse.assemble(
        [Target("a", "chat", "sglang")], vectors, statuses(), supported=all_supported
    )

    assert deployments[Key("a", "chat")].waiting is None
    assert counts[Metric.WAITING] == {Outcome.EMPTY: 1, Outcome.UNMATCHED: 1}


def test_assemble_counts_malformed_series() -> None:
    vectors = {m: parsed_for([{"metric": {}, "value": [NOW, "1"]}]) for m in Metric}

    _, counts = parse.assemble([], vectors, statuses(), supported=all_supported)

    assert counts[Metric.WAITING] == {Outcome.MALFORMED: 1}
