"""Offered load for the live simulator: arrival processes on a clock that starts at 0.

A spec says what load a deployment gets; `start` turns it into an arrival process that hands
out requests as the caller's clock moves. Pure: no clock reads, no file I/O (a trace spec
names a file; the caller reads it with `lmscale.sim.trace` and passes the requests in), and
deterministic for a given random generator.

Spec grammar (the `--load` flag and `PUT /load/...` bodies):
- `constant:RPS`: Poisson arrivals at RPS requests per second;
- `steps:RPS@SECONDS,RPS@SECONDS,...`: Poisson arrivals whose rate follows the steps in
  order; the last rate holds after the steps run out;
- `trace:FILE[@SPEEDx]`: the requests of an Azure CSV or Mooncake JSONL trace, in their own
  time played SPEED times faster (default 1x), with their own token counts; the trace starts
  over when it ends, so a live server never runs dry.

Poisson and step loads give every request the same prompt and output lengths (`Tokens`).
"""

from __future__ import annotations

import bisect
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from lmscale.sim.request import Request

RATE_WINDOW_SECONDS = 10.0  # a trace's offered rate is its arrivals over this window
_SPEED = re.compile(r"^(?P<speed>\d+(?:\.\d*)?|\.\d+)x$")


class LoadSpecError(ValueError):
    """A load spec that cannot be parsed; the message shows the grammar."""


@dataclass(frozen=True)
class Constant:
    rps: float

    def __str__(self) -> str:
        return f"constant:{_num(self.rps)}"


@dataclass(frozen=True)
class Steps:
    steps: tuple[tuple[float, float], ...]  # (requests per second, seconds)

    def __str__(self) -> str:
        return "steps:" + ",".join(f"{_num(r)}@{_num(s)}" for r, s in self.steps)


@dataclass(frozen=True)
class TraceReplay:
    path: str
    speed: float = 1.0

    def __str__(self) -> str:
        return f"trace:{self.path}@{_num(self.speed)}x"


LoadSpec = Constant | Steps | TraceReplay


@dataclass(frozen=True)
class Tokens:
    """Prompt and output lengths of every request of a Poisson or step load."""

    prompt: int = 512
    output: int = 128

    def __post_init__(self) -> None:
        if self.prompt < 1 or self.output < 1:
            raise LoadSpecError(f"token counts must be >= 1, got {self.prompt}/{self.output}")


@dataclass(frozen=True, eq=False)
class Load:
    """A spec with what it needs to run: token lengths, and a trace spec's requests."""

    spec: LoadSpec
    tokens: Tokens = Tokens()
    trace: tuple[Request, ...] = field(default=(), repr=False)


class Arrivals(Protocol):
    """Requests of one deployment, in arrival order, on a clock that starts at 0."""

    def take(self, until: float) -> list[Request]:
        """Requests arriving after the previous call's `until` and at or before this one."""
        ...

    def rate(self, at: float) -> float:
        """Requests per second offered at `at` (what /state reports)."""
        ...


def parse_spec(text: str) -> LoadSpec:
    """`constant:RPS`, `steps:RPS@SECONDS,...` or `trace:FILE[@SPEEDx]`."""
    kind, sep, rest = text.strip().partition(":")
    if not sep or not rest:
        raise LoadSpecError(_grammar(text, "expected KIND:VALUE"))
    if kind == "constant":
        return Constant(_rate(rest, text))
    if kind == "steps":
        return Steps(tuple(_step(part, text) for part in rest.split(",")))
    if kind == "trace":
        return _trace(rest, text)
    raise LoadSpecError(_grammar(text, f"unknown kind {kind!r}"))


def start(load: Load, *, rng: random.Random) -> Arrivals:
    """The arrival process of `load`, at time 0 of its own clock."""
    spec = load.spec
    if isinstance(spec, Constant):
        return PoissonArrivals(((0.0, spec.rps),), load.tokens, rng)
    if isinstance(spec, Steps):
        return PoissonArrivals(_schedule(spec), load.tokens, rng)
    if not load.trace:
        raise LoadSpecError(f"{spec}: the trace has no requests (read it before starting)")
    return TraceArrivals(load.trace, speed=spec.speed)


class PoissonArrivals:
    """Poisson arrivals whose rate is piecewise constant: `(start, rps)`, the last holds.

    Gaps are exponential; a draw that crosses into the next piece is discarded and drawn
    again from that piece's start, which is exact because the process is memoryless.
    """

    def __init__(
        self, schedule: Sequence[tuple[float, float]], tokens: Tokens, rng: random.Random
    ) -> None:
        self._starts = [start for start, _ in schedule]
        self._rates = [rps for _, rps in schedule]
        self._tokens = tokens
        self._rng = rng
        self._next = self._draw(0.0)

    def take(self, until: float) -> list[Request]:
        out = []
        while self._next <= until:
            out.append(Request(self._next, self._tokens.prompt, self._tokens.output))
            self._next = self._draw(self._next)
        return out

    def rate(self, at: float) -> float:
        return self._rates[max(0, bisect.bisect_right(self._starts, at) - 1)]

    def _draw(self, after: float) -> float:
        t = after
        while True:
            piece = max(0, bisect.bisect_right(self._starts, t) - 1)
            end = self._starts[piece + 1] if piece + 1 < len(self._starts) else math.inf
            rps = self._rates[piece]
            if rps > 0:
                candidate = t + self._rng.expovariate(rps)
                if candidate < end:
                    return candidate
            if math.isinf(end):
                return math.inf  # a zero rate that holds forever
            t = end


class TraceArrivals:
    """A trace's requests, time divided by `speed`, repeated end to end forever.

    One lap lasts the trace's span plus one mean gap, so the last request of a lap and the
    first of the next are as far apart as the trace's requests are on average.
    """

    def __init__(self, requests: Sequence[Request], *, speed: float = 1.0) -> None:
        if speed <= 0 or not math.isfinite(speed):
            raise LoadSpecError(f"trace speed must be a positive number, got {speed}")
        first = requests[0].arrival_s
        self._requests = [
            Request((r.arrival_s - first) / speed, r.prompt_tokens, r.output_tokens)
            for r in sorted(requests, key=lambda r: r.arrival_s)
        ]
        self._times = [r.arrival_s for r in self._requests]
        span = self._times[-1]
        gap = span / (len(self._times) - 1) if len(self._times) > 1 else 1.0 / speed
        self.lap_seconds = span + gap
        self._lap = 0
        self._index = 0

    def take(self, until: float) -> list[Request]:
        out: list[Request] = []
        while True:
            request = self._requests[self._index]
            at = request.arrival_s + self._lap * self.lap_seconds
            if at > until:
                return out
            out.append(Request(at, request.prompt_tokens, request.output_tokens))
            self._index += 1
            if self._index == len(self._requests):
                self._index, self._lap = 0, self._lap + 1

    def rate(self, at: float) -> float:
        window = min(RATE_WINDOW_SECONDS, at)
        if window <= 0:
            return 0.0
        return (self._count_until(at) - self._count_until(at - window)) / window

    def _count_until(self, t: float) -> int:
        """Arrivals at or before `t`, over all laps."""
        if t < 0:
            return 0
        lap, offset = divmod(t, self.lap_seconds)
        return int(lap) * len(self._times) + bisect.bisect_right(self._times, offset)


def _schedule(spec: Steps) -> tuple[tuple[float, float], ...]:
    pieces, at = [], 0.0
    for rps, seconds in spec.steps:
        pieces.append((at, rps))
        at += seconds
    return tuple(pieces)


def _rate(text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise LoadSpecError(_grammar(spec, f"{text!r} is not a number")) from None
    if value < 0 or not math.isfinite(value):
        raise LoadSpecError(_grammar(spec, f"rate must be a finite number >= 0, got {text}"))
    return value


def _step(part: str, spec: str) -> tuple[float, float]:
    rps, sep, seconds = part.partition("@")
    if not sep:
        raise LoadSpecError(_grammar(spec, f"step {part!r} is not RPS@SECONDS"))
    duration = _rate(seconds, spec)
    if duration <= 0:
        raise LoadSpecError(_grammar(spec, f"step {part!r} must last more than 0 seconds"))
    return _rate(rps, spec), duration


def _trace(rest: str, spec: str) -> TraceReplay:
    path, sep, suffix = rest.rpartition("@")
    match = _SPEED.match(suffix) if sep else None
    if match is None:
        return TraceReplay(rest)  # no speed: an '@' may belong to the file name
    speed = float(match["speed"])
    if speed <= 0 or not path:
        raise LoadSpecError(_grammar(spec, "trace speed must be > 0 and the file named"))
    return TraceReplay(path, speed)


def _grammar(spec: str, problem: str) -> str:
    return (
        f"load spec {spec!r}: {problem}; expected constant:RPS, "
        "steps:RPS@SECONDS,RPS@SECONDS,... or trace:FILE[@SPEEDx]"
    )


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def from_json(body: object, *, tokens: Tokens) -> tuple[LoadSpec, Tokens]:
    """A `PUT /load/...` body: `{"rps": R}` or `{"spec": "steps:..."}`, with optional
    `promptTokens` / `outputTokens` (the server's defaults otherwise)."""
    if not isinstance(body, dict):
        raise LoadSpecError("expected a JSON object with 'rps' or 'spec'")
    unknown = set(body) - {"rps", "spec", "promptTokens", "outputTokens"}
    if unknown:
        raise LoadSpecError(f"unknown field(s) {', '.join(sorted(unknown))}")
    if ("rps" in body) == ("spec" in body):
        raise LoadSpecError("give exactly one of 'rps' (a number) and 'spec' (a load spec)")
    if "spec" in body:
        if not isinstance(body["spec"], str):
            raise LoadSpecError("'spec' must be a string such as 'steps:2@60,8@120'")
        spec: LoadSpec = parse_spec(body["spec"])
    else:
        rps = body["rps"]
        if isinstance(rps, bool) or not isinstance(rps, int | float):
            raise LoadSpecError(f"'rps' must be a number, got {rps!r}")
        spec = Constant(_rate(str(rps), f"rps={rps}"))
    prompt = _tokens(body.get("promptTokens", tokens.prompt), "promptTokens")
    output = _tokens(body.get("outputTokens", tokens.output), "outputTokens")
    return spec, Tokens(prompt, output)


def _tokens(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LoadSpecError(f"'{name}' must be an integer >= 1, got {value!r}")
    return value
