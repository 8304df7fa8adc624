"""The load signal: a short average plus the rise a trend predicts over one start-up."""

from __future__ import annotations

import pytest

from lmscale.policy import forecast


def ramp(*, start: float, slope: float, seconds: int, every: int = 10) -> list[tuple[float, float]]:
    return [(float(t), start + slope * t) for t in range(0, seconds + 1, every)]


def test_recent_mean_averages_only_inside_the_window() -> None:
    samples = [(0.0, 100.0), (50.0, 10.0), (60.0, 20.0)]
    assert forecast.recent_mean(samples, now=60.0, window=30.0) == pytest.approx(15.0)


def test_recent_mean_falls_back_to_the_newest_sample() -> None:
    assert forecast.recent_mean([(0.0, 7.0), (10.0, 9.0)], now=500.0, window=60.0) == 9.0


def test_slope_of_a_clean_ramp() -> None:
    samples = ramp(start=10.0, slope=0.1, seconds=300)
    assert forecast.rise_per_second(samples, now=300.0, window=301.0) == pytest.approx(0.1)


def test_a_falling_load_has_no_rise() -> None:
    samples = ramp(start=100.0, slope=-0.1, seconds=300)
    assert forecast.rise_per_second(samples, now=300.0, window=301.0) == 0.0


def test_too_few_samples_or_too_short_a_span_is_no_trend() -> None:
    few = ramp(start=10.0, slope=1.0, seconds=40)  # 5 samples
    assert forecast.rise_per_second(few, now=40.0, window=301.0) == 0.0
    short = ramp(start=10.0, slope=1.0, seconds=60, every=5)  # 13 samples over 60 of 300 s
    assert forecast.rise_per_second(short, now=60.0, window=300.0) == 0.0


def test_expected_load_adds_the_rise_over_the_horizon() -> None:
    samples = ramp(start=100.0, slope=0.02, seconds=300)  # +6 per 300 s
    base = forecast.recent_mean(samples, now=300.0, window=60.0)
    expected = forecast.expected_load(
        samples, now=300.0, average_window=60.0, trend_window=301.0, horizon=100.0
    )
    assert expected == pytest.approx(base + 2.0)


def test_the_rise_is_capped_at_a_fraction_of_the_load() -> None:
    samples = ramp(start=10.0, slope=1.0, seconds=300)  # a fleet filling from empty
    base = forecast.recent_mean(samples, now=300.0, window=60.0)
    expected = forecast.expected_load(
        samples, now=300.0, average_window=60.0, trend_window=301.0, horizon=300.0
    )
    assert expected == pytest.approx(base * (1 + forecast.MAX_RISE))


def test_no_trend_window_means_the_plain_average() -> None:
    samples = ramp(start=10.0, slope=1.0, seconds=300)
    expected = forecast.expected_load(
        samples, now=300.0, average_window=60.0, trend_window=0.0, horizon=300.0
    )
    assert expected == forecast.recent_mean(samples, now=300.0, window=60.0)
