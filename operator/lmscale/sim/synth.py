"""Synthetic traffic derived from real traces, to test policies on shapes not tuned on.

- `diurnal`: a rate envelope (ServeGen's 10-minute request rates of a real service)
  compressed in time and rescaled to a peak rate, with Poisson arrivals and token lengths
  drawn from a real trace (Azure's);
- `long_context`: a trace whose prompts are rescaled by a factor;
- `poisson` with a shape (`bursts_after_idle`, `short_bursts`) and `code_lengths`:
  adversarial traffic no public trace has, to check a policy on shapes it was not set from.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

from lmscale.sim.request import Request


def diurnal(
    envelope: Sequence[tuple[float, float]],
    *,
    lengths: Sequence[tuple[int, int]],
    peak_rps: float,
    time_scale: float,
    seed: int = 0,
) -> list[Request]:
    """Poisson arrivals following `envelope` (start s, rate) sped up `time_scale` times.

    The rate is interpolated linearly between window centres and rescaled so its highest
    window is `peak_rps`; arrivals are drawn by thinning a Poisson process at that peak.
    """
    if not envelope or not lengths:
        raise ValueError("diurnal traffic needs a rate envelope and token lengths")
    if peak_rps <= 0 or time_scale <= 0:
        raise ValueError("peak rate and time scale must be positive")
    highest = max(rate for _, rate in envelope)
    if highest <= 0:
        raise ValueError("the rate envelope is zero everywhere")
    origin = envelope[0][0]
    width = (envelope[1][0] - origin) if len(envelope) > 1 else 600.0
    centres = [(start - origin + width / 2) / time_scale for start, _ in envelope]
    rates = [rate / highest * peak_rps for _, rate in envelope]
    duration = (envelope[-1][0] - origin + width) / time_scale
    rng = random.Random(seed)
    out: list[Request] = []
    now = 0.0
    while True:
        now += rng.expovariate(peak_rps)
        if now >= duration:
            return out
        if rng.random() * peak_rps <= interpolate(centres, rates, now):
            prompt, output = lengths[rng.randrange(len(lengths))]
            out.append(Request(now, prompt, output))


def long_context(
    requests: Sequence[Request], *, prompt_factor: float, max_prompt_tokens: int
) -> list[Request]:
    """The same arrivals with prompts `prompt_factor` times longer (capped)."""
    if prompt_factor <= 0:
        raise ValueError("prompt factor must be positive")
    return [
        Request(
            r.arrival_s,
            max(1, min(max_prompt_tokens, math.ceil(r.prompt_tokens * prompt_factor))),
            r.output_tokens,
        )
        for r in requests
    ]


def interpolate(xs: Sequence[float], ys: Sequence[float], x: float) -> float:
    """Piecewise-linear y(x), flat beyond the ends."""
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    low, high = 0, len(xs) - 1
    while high - low > 1:
        middle = (low + high) // 2
        if xs[middle] <= x:
            low = middle
        else:
            high = middle
    span = xs[high] - xs[low]
    weight = (x - xs[low]) / span if span > 0 else 0.0
    return ys[low] + weight * (ys[high] - ys[low])


def poisson(
    rate_of: Callable[[float], float],
    *,
    duration: float,
    peak_rps: float,
    lengths: Sequence[tuple[int, int]],
    seed: int = 0,
) -> list[Request]:
    """Poisson arrivals at `rate_of(t) * peak_rps` (a shape peaking at 1) for `duration` s."""
    if peak_rps <= 0 or duration <= 0 or not lengths:
        raise ValueError("poisson traffic needs a positive peak, a duration and token lengths")
    rng = random.Random(seed)
    out: list[Request] = []
    now = 0.0
    while True:
        now += rng.expovariate(peak_rps)
        if now >= duration:
            return out
        if rng.random() <= rate_of(now):
            prompt, output = lengths[rng.randrange(len(lengths))]
            out.append(Request(now, prompt, output))


BURSTS_AFTER_IDLE = ((720.0, 1200.0), (1680.0, 1980.0))


def bursts_after_idle(
    *,
    quiet: float = 0.1,
    ramp_seconds: float = 45.0,
    bursts: Sequence[tuple[float, float]] = BURSTS_AFTER_IDLE,
) -> Callable[[float], float]:
    """Quiet spells (`quiet` of the peak) broken by bursts to the peak within `ramp_seconds`;
    by default 12 min quiet, 8 min burst, 8 min quiet, 5 min burst, then quiet (40 min)."""

    def shape(t: float) -> float:
        for start, end in bursts:
            if start <= t < end:
                return quiet + (1 - quiet) * min(1.0, (t - start) / ramp_seconds)
        return quiet

    return shape


def short_bursts(
    *,
    base: float = 0.35,
    seconds: tuple[float, float] = (40.0, 100.0),
    gap: tuple[float, float] = (180.0, 480.0),
    duration: float = 3600.0,
    seed: int = 0,
) -> Callable[[float], float]:
    """A base load (`base` of the peak) with bursts to the peak lasting `seconds` (shorter
    than a cold start) at random gaps."""
    rng = random.Random(seed)
    spans = []
    t = rng.uniform(*gap)
    while t < duration:
        length = rng.uniform(*seconds)
        spans.append((t, t + length, rng.uniform(0.7, 1.0)))
        t += length + rng.uniform(*gap)

    def shape(now: float) -> float:
        for start, end, height in spans:
            if start <= now < end:
                return base + (1 - base) * height
        return base

    return shape


def code_lengths(count: int, *, seed: int = 0) -> list[tuple[int, int]]:
    """Prompt-heavy code-assistant token lengths: long prompts (a file and its context,
    median about 2,000 tokens), short answers (median about 60 tokens)."""
    rng = random.Random(seed)
    return [
        (
            max(64, min(16_000, round(rng.lognormvariate(7.6, 0.7)))),
            max(4, min(1_024, round(rng.lognormvariate(4.1, 0.9)))),
        )
        for _ in range(count)
    ]


def sparse_bursts(
    *,
    duration: float,
    seconds: tuple[float, float] = (120.0, 600.0),
    gap: tuple[float, float] = (1500.0, 3300.0),
    seed: int = 0,
) -> tuple[Callable[[float], float], list[tuple[float, float]]]:
    """A low-traffic model: bursts at the peak lasting `seconds`, nothing in between for
    `gap` (longer than an idle window, so a scale-to-zero fleet empties). The shape and the
    bursts' (start, end) spans; the trace opens with a gap."""
    rng = random.Random(seed)
    spans = []
    t = rng.uniform(*gap)
    while t < duration:
        end = min(duration, t + rng.uniform(*seconds))
        spans.append((t, end))
        t = end + rng.uniform(*gap)

    def shape(now: float) -> float:
        for start, end in spans:
            if start <= now < end:
                return 1.0
        return 0.0

    return shape, spans


def chat_lengths(count: int, *, seed: int = 0) -> list[tuple[int, int]]:
    """Chat token lengths, generated: prompts of about 1,000 tokens at the median, answers
    of about 250 (the shape of public conversation traces, none of their data)."""
    rng = random.Random(seed)
    return [
        (
            max(16, min(8_000, round(rng.lognormvariate(6.9, 0.8)))),
            max(4, min(1_500, round(rng.lognormvariate(5.5, 0.8)))),
        )
        for _ in range(count)
    ]
