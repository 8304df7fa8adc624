"""Trace parsing: both formats, and errors that name the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmscale.sim import trace
from lmscale.sim.request import Request

AZURE = """TIMESTAMP,ContextTokens,GeneratedTokens
2023-11-16 18:15:46.6805900,374,44
2023-11-16 18:15:50.9951690,396,109
2023-11-16 18:15:51.0000000,1,1"""


def test_azure_times_are_seconds_from_the_first_request() -> None:
    requests = trace.parse_azure(AZURE.splitlines(), source="t.csv")
    assert requests[0] == Request(0.0, 374, 44)
    assert requests[1].arrival_s == pytest.approx(4.314579)
    assert [r.prompt_tokens for r in requests] == [374, 396, 1]


def test_azure_reads_an_open_file(tmp_path: Path) -> None:
    path = tmp_path / "azure.csv"
    path.write_text(AZURE)  # no trailing newline, like the real trace
    with path.open(newline="") as lines:
        assert len(trace.parse(lines, trace.guess_format(path.name), source=str(path))) == 3


@pytest.mark.parametrize(
    ("bad_row", "problem"),
    [
        pytest.param("2023-11-16 18:15:52.0,12", "expected 3 columns", id="short-row"),
        pytest.param("yesterday,12,3", "TIMESTAMP", id="bad-timestamp"),
        pytest.param("2023-11-16 18:15:52.0,-4,3", "ContextTokens", id="negative-prompt"),
        pytest.param("2023-11-16 18:15:52.0,12,zero", "GeneratedTokens", id="not-a-number"),
        pytest.param("2023-11-16 18:15:52.0,12,0", "GeneratedTokens", id="zero-output"),
    ],
)
def test_azure_malformed_line_names_its_number(bad_row: str, problem: str) -> None:
    lines = [*AZURE.splitlines(), bad_row]
    with pytest.raises(trace.TraceError) as caught:
        trace.parse_azure(lines, source="t.csv")
    assert str(caught.value).startswith("t.csv:5: ")
    assert problem in str(caught.value)


def test_azure_header_must_name_the_columns() -> None:
    with pytest.raises(
        trace.TraceError, match=r"t.csv:1: header lacks column\(s\) GeneratedTokens"
    ):
        trace.parse_azure(["TIMESTAMP,ContextTokens", "2023-11-16 18:15:46.0,1"], source="t.csv")


MOONCAKE = [
    '{"timestamp": 0, "input_length": 6955, "output_length": 52, "hash_ids": [0, 1]}',
    '{"timestamp": 1500, "input_length": 10, "output_length": 7}',
]


def test_mooncake_timestamps_are_milliseconds() -> None:
    assert trace.parse_mooncake(MOONCAKE) == [Request(0.0, 6955, 52), Request(1.5, 10, 7)]


@pytest.mark.parametrize(
    ("bad_line", "problem"),
    [
        pytest.param("{not json", "not JSON", id="not-json"),
        pytest.param('{"timestamp": 1, "input_length": 3}', "missing 'output_length'", id="key"),
        pytest.param("[1, 2, 3]", "expected a JSON object", id="array"),
        pytest.param(
            '{"timestamp": "x", "input_length": 3, "output_length": 1}', "timestamp", id="bad-time"
        ),
    ],
)
def test_mooncake_malformed_line_names_its_number(bad_line: str, problem: str) -> None:
    with pytest.raises(trace.TraceError) as caught:
        trace.parse_mooncake([*MOONCAKE, "", bad_line], source="m.jsonl")
    assert str(caught.value).startswith("m.jsonl:4: ")
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        pytest.param("a.csv", trace.TraceFormat.AZURE, id="csv"),
        pytest.param("b.jsonl", trace.TraceFormat.MOONCAKE, id="jsonl"),
    ],
)
def test_format_from_file_name(name: str, fmt: trace.TraceFormat) -> None:
    assert trace.guess_format(name) is fmt


def test_rate_scale_keeps_duration_and_multiplies_rate() -> None:
    base = [Request(float(i), 10, 5) for i in range(100)]
    scaled = trace.rate_scale(base, 3.5, seed=1)
    assert 330 <= len(scaled) <= 370
    assert scaled[0].arrival_s == 0.0 and scaled[-1].arrival_s <= 99.0 + 1e-9
    assert scaled == trace.rate_scale(base, 3.5, seed=1)
    first_half = sum(1 for r in scaled if r.arrival_s < 50)
    assert abs(first_half - len(scaled) / 2) < 20


def test_rate_envelope_reads_one_pool() -> None:
    lines = [
        "pool,window_start_s,total_rate_rps,active_clients,n_clients_in_pool",
        "a,0,1.5,1,2",
        "b,0,9,1,2",
        "a,600,2.5,1,2",
    ]
    assert trace.parse_rate_envelope(lines, pool="a") == [(0.0, 1.5), (600.0, 2.5)]
