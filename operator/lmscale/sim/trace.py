"""Request traces: Azure LLM inference CSV and Mooncake JSONL, parsed from lines of text.

Parsers take lines (an open file works) and a `source` name for messages, so this module
does no file I/O itself. A malformed line raises `TraceError` naming the source and the
line number, so a user can open the file at the spot.
"""

from __future__ import annotations

import csv
import enum
import json
import math
import random
from collections.abc import Iterable, Sequence
from datetime import datetime

from lmscale.sim.request import Request

AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")


class TraceFormat(enum.StrEnum):
    AZURE = "azure"
    MOONCAKE = "mooncake"


class TraceError(ValueError):
    """A trace that cannot be read, with where the problem is."""

    def __init__(self, source: str, line: int, problem: str) -> None:
        super().__init__(f"{source}:{line}: {problem}")
        self.source, self.line, self.problem = source, line, problem


def guess_format(name: str) -> TraceFormat:
    """Azure for .csv, Mooncake for .jsonl/.json; the `--format` default."""
    lowered = name.lower()
    if lowered.endswith((".jsonl", ".json")):
        return TraceFormat.MOONCAKE
    if lowered.endswith(".csv"):
        return TraceFormat.AZURE
    raise ValueError(f"cannot tell the trace format of {name!r}; give --format azure|mooncake")


def parse(lines: Iterable[str], fmt: TraceFormat, *, source: str = "<trace>") -> list[Request]:
    """Requests of a trace in either format, sorted by arrival, times from 0."""
    if fmt is TraceFormat.AZURE:
        return parse_azure(lines, source=source)
    return parse_mooncake(lines, source=source)


def parse_azure(lines: Iterable[str], *, source: str = "<trace>") -> list[Request]:
    """`TIMESTAMP,ContextTokens,GeneratedTokens` rows (wall-clock times, 7 decimals)."""
    rows = csv.reader(lines)
    header = next(rows, None)
    if header is None:
        raise TraceError(source, 1, "empty trace: expected a header " + ",".join(AZURE_COLUMNS))
    names = [name.strip() for name in header]
    missing = [column for column in AZURE_COLUMNS if column not in names]
    if missing:
        raise TraceError(source, 1, f"header lacks column(s) {', '.join(missing)}")
    at = [names.index(column) for column in AZURE_COLUMNS]
    parsed: list[tuple[datetime, int, int]] = []
    for row in rows:
        line = rows.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < len(names):
            raise TraceError(source, line, f"expected {len(names)} columns, got {len(row)}")
        stamp = _azure_time(row[at[0]], source, line)
        prompt = _count(row[at[1]], "ContextTokens", source, line, minimum=1)
        output = _count(row[at[2]], "GeneratedTokens", source, line, minimum=1)
        parsed.append((stamp, prompt, output))
    if not parsed:
        raise TraceError(source, 2, "no requests after the header")
    start = min(stamp for stamp, _, _ in parsed)
    requests = [Request((stamp - start).total_seconds(), p, o) for stamp, p, o in parsed]
    return sorted(requests, key=lambda r: r.arrival_s)


def parse_mooncake(lines: Iterable[str], *, source: str = "<trace>") -> list[Request]:
    """One JSON object a line: `timestamp` (ms), `input_length`, `output_length`."""
    requests = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as error:
            raise TraceError(source, number, f"not JSON: {error.msg}") from error
        if not isinstance(record, dict):
            raise TraceError(source, number, "expected a JSON object")
        for key in ("timestamp", "input_length", "output_length"):
            if key not in record:
                raise TraceError(source, number, f"missing {key!r}")
        millis = _number(record["timestamp"], "timestamp", source, number)
        prompt = _count(record["input_length"], "input_length", source, number, minimum=1)
        output = _count(record["output_length"], "output_length", source, number, minimum=1)
        requests.append(Request(millis / 1000.0, prompt, output))
    if not requests:
        raise TraceError(source, 1, "no requests in trace")
    start = min(r.arrival_s for r in requests)
    shifted = [Request(r.arrival_s - start, r.prompt_tokens, r.output_tokens) for r in requests]
    return sorted(shifted, key=lambda r: r.arrival_s)


def parse_rate_envelope(
    lines: Iterable[str], *, pool: str, source: str = "<envelope>"
) -> list[tuple[float, float]]:
    """`(window_start_s, requests_per_second)` of one pool of a ServeGen-style rate CSV."""
    rows = csv.DictReader(lines)
    needed = {"pool", "window_start_s", "total_rate_rps"}
    if rows.fieldnames is None or not needed <= set(rows.fieldnames):
        raise TraceError(source, 1, f"header needs columns {', '.join(sorted(needed))}")
    envelope = []
    for row in rows:
        if row["pool"] != pool:
            continue
        line = rows.line_num
        start = _number(row["window_start_s"], "window_start_s", source, line)
        rate = _number(row["total_rate_rps"], "total_rate_rps", source, line)
        if rate < 0:
            raise TraceError(source, line, f"negative rate {rate}")
        envelope.append((start, rate))
    if not envelope:
        raise TraceError(source, 1, f"no rows for pool {pool!r}")
    return sorted(envelope)


def rate_scale(requests: Sequence[Request], factor: float, *, seed: int = 0) -> list[Request]:
    """Multiply the request rate by `factor`, keeping the trace's duration and burst shape.

    Each request is repeated `floor(factor)` times, plus once more with probability
    `frac(factor)`; the copies land uniformly between it and the next arrival, so the rate
    at every time scale above the inter-arrival gap is multiplied and bursts stay bursts.
    Token counts stay with their request. Below 1 the trace is thinned at random.
    """
    if factor <= 0 or not math.isfinite(factor):
        raise ValueError(f"rate scale must be a positive number, got {factor}")
    rng = random.Random(seed)
    whole, fraction = int(factor), factor - int(factor)
    out: list[Request] = []
    for index, request in enumerate(requests):
        following = requests[index + 1].arrival_s if index + 1 < len(requests) else None
        gap = (following - request.arrival_s) if following is not None else 0.0
        copies = whole + (1 if rng.random() < fraction else 0)
        for copy in range(copies):
            offset = 0.0 if copy == 0 else rng.random() * gap
            out.append(
                Request(request.arrival_s + offset, request.prompt_tokens, request.output_tokens)
            )
    out.sort(key=lambda r: r.arrival_s)
    return out


def _azure_time(text: str, source: str, line: int) -> datetime:
    text = text.strip()
    whole, _, fraction = text.partition(".")
    try:
        stamp = datetime.fromisoformat(whole)
        if fraction:
            if not fraction.isdigit():
                raise ValueError(fraction)
            stamp = stamp.replace(microsecond=0)
            micros = round(int(fraction) * 10 ** (6 - len(fraction)))
            return stamp.replace(microsecond=min(999_999, micros))
        return stamp
    except ValueError as error:
        raise TraceError(
            source, line, f"TIMESTAMP {text!r} is not 'YYYY-MM-DD HH:MM:SS.fffffff'"
        ) from error


def _number(value: object, name: str, source: str, line: int) -> float:
    if isinstance(value, bool):
        raise TraceError(source, line, f"{name} must be a number, got {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as error:
        raise TraceError(source, line, f"{name} must be a number, got {value!r}") from error
    if not math.isfinite(number):
        raise TraceError(source, line, f"{name} must be finite, got {value!r}")
    return number


def _count(value: object, name: str, source: str, line: int, *, minimum: int) -> int:
    number = _number(value.strip() if isinstance(value, str) else value, name, source, line)
    if number != int(number) or number < minimum:
        raise TraceError(source, line, f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(number)
