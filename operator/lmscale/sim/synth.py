"""Synthetic traffic derived from real traces, to test policies on shapes not tuned on.

- `diurnal`: a rate envelope (ServeGen's 10-minute request rates of a real service)
  compressed in time and rescaled to a peak rate, with Poisson arrivals and token lengths
  drawn from a real trace (Azure's);
- `long_context`: a trace whose prompts are rescaled by a factor.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

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
        if rng.random() * peak_rps <= _interpolate(centres, rates, now):
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


def _interpolate(xs: Sequence[float], ys: Sequence[float], x: float) -> float:
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
