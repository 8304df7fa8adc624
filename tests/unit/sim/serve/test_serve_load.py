"""Load specs and arrival processes of `lmscale sim serve`: parsing, rates, determinism."""

from __future__ import annotations

import random

import pytest

from lmscale.sim.request import Request
from lmscale.sim.serve import load

TOKENS = load.Tokens(100, 20)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("constant:5", load.Constant(5.0), id="constant"),
        pytest.param("constant:0.5", load.Constant(0.5), id="constant-fraction"),
        pytest.param("constant:0", load.Constant(0.0), id="constant-zero"),
        pytest.param(
            "steps:2@60,8@120,1@30",
            load.Steps(((2.0, 60.0), (8.0, 120.0), (1.0, 30.0))),
            id="steps",
        ),
        pytest.param("trace:/t/a.csv", load.TraceReplay("/t/a.csv", 1.0), id="trace"),
        pytest.param("trace:/t/a.csv@4x", load.TraceReplay("/t/a.csv", 4.0), id="trace-speed"),
        pytest.param("trace:a.jsonl@0.5x", load.TraceReplay("a.jsonl", 0.5), id="trace-slower"),
        pytest.param("trace:me@host.csv", load.TraceReplay("me@host.csv", 1.0), id="at-in-name"),
    ],
)
def test_spec_parses(text: str, expected: load.LoadSpec) -> None:
    assert load.parse_spec(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("5", id="no-kind"),
        pytest.param("poisson:5", id="unknown-kind"),
        pytest.param("constant:", id="no-value"),
        pytest.param("constant:fast", id="not-a-number"),
        pytest.param("constant:-1", id="negative"),
        pytest.param("constant:inf", id="infinite"),
        pytest.param("steps:2@60,8", id="step-without-duration"),
        pytest.param("steps:2@0", id="zero-duration"),
        pytest.param("trace:a.csv@0x", id="zero-speed"),
    ],
)
def test_bad_spec_names_the_grammar(text: str) -> None:
    with pytest.raises(load.LoadSpecError, match="constant:RPS"):
        load.parse_spec(text)


@pytest.mark.parametrize(
    "text", ["constant:5", "steps:2@60,8@120", "trace:/t/a.csv@4x", "constant:0.25"]
)
def test_spec_text_round_trips(text: str) -> None:
    assert str(load.parse_spec(text)) == text


def _run(arrivals: load.Arrivals, until: float, step: float = 0.7) -> list[Request]:
    """Take arrivals in uneven slices, as the server's ticks do."""
    out: list[Request] = []
    t = 0.0
    while t < until:
        t = min(until, t + step)
        out += arrivals.take(t)
    return out


def test_constant_rate_is_poisson_at_the_rate_and_seeded() -> None:
    spec = load.Load(load.Constant(20.0), TOKENS)
    first = _run(load.start(spec, rng=random.Random(7)), 100.0)
    again = _run(load.start(spec, rng=random.Random(7)), 100.0, step=3.1)
    other = _run(load.start(spec, rng=random.Random(8)), 100.0)

    assert first == again  # the same seed gives the same arrivals, whatever the slicing
    assert first != other
    assert 1800 < len(first) < 2200
    times = [r.arrival_s for r in first]
    assert times == sorted(times) and times[0] > 0 and times[-1] <= 100.0
    assert {(r.prompt_tokens, r.output_tokens) for r in first} == {(100, 20)}


def test_take_returns_each_arrival_once() -> None:
    arrivals = load.start(load.Load(load.Constant(50.0), TOKENS), rng=random.Random(1))
    a = arrivals.take(1.0)
    b = arrivals.take(1.0)
    c = arrivals.take(2.0)

    assert b == []
    assert all(r.arrival_s <= 1.0 for r in a) and all(1.0 < r.arrival_s <= 2.0 for r in c)


def test_zero_rate_never_arrives() -> None:
    arrivals = load.start(load.Load(load.Constant(0.0), TOKENS), rng=random.Random(1))

    assert arrivals.take(1e9) == []
    assert arrivals.rate(5.0) == 0.0


def test_steps_follow_their_rates_and_hold_the_last() -> None:
    spec = load.Load(load.parse_spec("steps:10@50,0@50,40@25"), TOKENS)
    arrivals = load.start(spec, rng=random.Random(3))
    requests = _run(arrivals, 200.0)

    def count(lo: float, hi: float) -> int:
        return sum(lo < r.arrival_s <= hi for r in requests)

    assert 400 < count(0, 50) < 600
    assert count(50, 100) == 0
    assert 850 < count(100, 125) < 1150
    assert 2700 < count(125, 200) < 3300  # the last step holds
    assert [arrivals.rate(t) for t in (0, 49.9, 50, 99, 100, 500)] == [10, 10, 0, 0, 40, 40]


def _trace() -> tuple[Request, ...]:
    return (Request(100.0, 10, 1), Request(101.0, 20, 2), Request(104.0, 30, 3))


def test_trace_replays_at_speed_from_zero_and_loops() -> None:
    spec = load.Load(load.TraceReplay("t.csv", 2.0), TOKENS, _trace())
    arrivals = load.start(spec, rng=random.Random(0))
    requests = _run(arrivals, 6.0, step=0.25)

    # times halve and start at 0; a lap is the span (2 s) plus a mean gap (1 s)
    assert [r.arrival_s for r in requests] == [0.0, 0.5, 2.0, 3.0, 3.5, 5.0, 6.0]
    assert [r.prompt_tokens for r in requests] == [10, 20, 30, 10, 20, 30, 10]
    assert [r.output_tokens for r in requests[:3]] == [1, 2, 3]


def test_trace_rate_counts_recent_arrivals() -> None:
    requests = tuple(Request(float(i), 10, 1) for i in range(100))  # 1 rps for 99 s
    arrivals = load.TraceArrivals(requests, speed=3.0)

    assert arrivals.rate(0.0) == 0.0
    assert arrivals.rate(20.0) == pytest.approx(3.0, rel=0.05)
    assert arrivals.rate(5.0) == pytest.approx(3.0)  # short history: its own window


def test_trace_spec_needs_its_requests() -> None:
    with pytest.raises(load.LoadSpecError, match="no requests"):
        load.start(load.Load(load.TraceReplay("t.csv"), TOKENS), rng=random.Random(0))


@pytest.mark.parametrize(
    ("body", "spec", "tokens"),
    [
        pytest.param({"rps": 4}, load.Constant(4.0), TOKENS, id="rps"),
        pytest.param({"rps": 2.5, "promptTokens": 900, "outputTokens": 300},
                     load.Constant(2.5), load.Tokens(900, 300), id="rps-with-tokens"),
        pytest.param({"spec": "steps:1@10,5@10"}, load.Steps(((1.0, 10.0), (5.0, 10.0))),
                     TOKENS, id="spec"),
    ],
)
def test_put_body(body: dict[str, object], spec: load.LoadSpec, tokens: load.Tokens) -> None:
    assert load.from_json(body, tokens=TOKENS) == (spec, tokens)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        pytest.param([], "JSON object", id="not-an-object"),
        pytest.param({}, "exactly one", id="empty"),
        pytest.param({"rps": 1, "spec": "constant:1"}, "exactly one", id="both"),
        pytest.param({"rps": "fast"}, "number", id="rps-string"),
        pytest.param({"rps": True}, "number", id="rps-bool"),
        pytest.param({"rps": -2}, ">= 0", id="rps-negative"),
        pytest.param({"rps": 1, "promptTokens": 0}, "promptTokens", id="zero-tokens"),
        pytest.param({"rps": 1, "outputTokens": 1.5}, "outputTokens", id="fractional-tokens"),
        pytest.param({"rps": 1, "burst": 3}, "unknown field", id="unknown-field"),
        pytest.param({"spec": 3}, "string", id="spec-not-string"),
    ],
)
def test_bad_put_body(body: object, problem: str) -> None:
    with pytest.raises(load.LoadSpecError, match=problem):
        load.from_json(body, tokens=TOKENS)
