"""The load signal: a short average now, plus the rise expected over one start-up.

Replicas asked for now serve only after their start-up (minutes for a model), so on a
rising load a purely reactive count is always one start-up late. A least-squares line
through the last `trend_window_seconds` of load extrapolates the rise over the learned
start-up time; a falling trend is ignored, so scale-down stays with the windows.
"""

from __future__ import annotations

from collections.abc import Sequence

# Fewer samples than this, or a span shorter than a third of the window, is no trend.
MIN_TREND_SAMPLES = 6
# The rise a trend may add, as a fraction of the current load: a start-up ramp (a
# fleet filling from empty) is not a trend to extrapolate for minutes, and noise in a
# flat load fits a slope too. On the policy benchmark, 0.2 instead of 0.5 saved 0.5-7%
# of GPU-hours on all six scenarios, attainment within 0.1 point.
MAX_RISE = 0.2


def recent_mean(samples: Sequence[tuple[float, float]], *, now: float, window: float) -> float:
    """Mean load of the samples inside the last `window` seconds (the newest at least)."""
    inside = [value for time, value in samples if now - time < window] or [samples[-1][1]]
    return sum(inside) / len(inside)


def rise_per_second(samples: Sequence[tuple[float, float]], *, now: float, window: float) -> float:
    """Least-squares slope of load over the last `window` seconds, floored at zero."""
    inside = [(time, value) for time, value in samples if now - time < window]
    if len(inside) < MIN_TREND_SAMPLES or inside[-1][0] - inside[0][0] < window / 3:
        return 0.0
    mean_t = sum(t for t, _ in inside) / len(inside)
    mean_v = sum(v for _, v in inside) / len(inside)
    spread = sum((t - mean_t) ** 2 for t, _ in inside)
    if spread <= 0:
        return 0.0
    slope = sum((t - mean_t) * (v - mean_v) for t, v in inside) / spread
    return max(0.0, slope)


def expected_load(
    samples: Sequence[tuple[float, float]],
    *,
    now: float,
    average_window: float,
    trend_window: float,
    horizon: float,
) -> float:
    """Load to size for: the recent mean plus the trend's rise over `horizon` seconds."""
    base = recent_mean(samples, now=now, window=average_window)
    if trend_window <= 0:
        return base
    rise = rise_per_second(samples, now=now, window=trend_window) * horizon
    return base + min(rise, MAX_RISE * base)
