"""The replay loop: accounting, determinism, metric delay, scaling through decide()."""

from __future__ import annotations

import pytest

from lmscale import policy
from lmscale.sim.baselines.static import StaticScaler
from lmscale.sim.observe import ClusterView
from lmscale.sim.request import Request
from lmscale.sim.results import Slo, summarize
from lmscale.sim.scaler import LmscaleScaler
from lmscale.sim.simulator import SimConfig, simulate

from .fakes import LinearStep

PERF = LinearStep(cold_start_seconds=60.0)


def steady(rate: float, seconds: float, *, start: float = 0.0) -> list[Request]:
    count = int(rate * seconds)
    return [Request(start + i / rate, 100, 20) for i in range(count)]


def test_static_fleet_serves_everything_and_pays_for_its_gpus() -> None:
    requests = steady(2.0, 600.0)
    run = simulate(
        requests, PERF, StaticScaler(3), SimConfig(cold_start_seconds=60.0, initial_replicas=3)
    )
    summary = summarize(
        run, slo=Slo(1.0, 0.1), gpus_per_replica=1, cost_per_replica_hour=2.0, wall_seconds=1.0
    )
    assert summary["completed"] == summary["requests"] == len(requests)
    assert summary["slo_attainment"] == 1.0
    assert summary["gpu_hours"] == pytest.approx(3 * requests[-1].arrival_s / 3600)
    assert summary["cost"] == pytest.approx(2 * summary["gpu_hours"])
    assert summary["ttft_p50_ms"] == pytest.approx(110.0)  # prefill of 100 tokens alone


def test_replays_are_deterministic() -> None:
    requests = steady(5.0, 300.0)
    config = SimConfig(cold_start_seconds=60.0, initial_replicas=1)

    def once() -> list[float]:
        scaler = LmscaleScaler(policy.ScalingPolicySpec(max_replicas=8, target_per_replica=2.0))
        run = simulate(requests, PERF, scaler, config)
        return [c.finished_s for c in run.completed]

    assert once() == once()


class Recorder:
    """A scaler that records what it saw and asks for a fixed count from a time on."""

    name, period_seconds, least_loaded_first = "recorder", 10.0, True

    def __init__(self, *, scale_at: float, replicas: int) -> None:
        self.views: list[ClusterView] = []
        self.scale_at, self.replicas = scale_at, replicas

    def desired(self, view: ClusterView) -> int:
        self.views.append(view)
        return self.replicas if view.now >= self.scale_at else view.spec_replicas


def test_metrics_arrive_a_scrape_late_and_cold_starts_delay_readiness() -> None:
    recorder = Recorder(scale_at=100.0, replicas=3)
    requests = steady(1.0, 400.0)
    simulate(requests, PERF, recorder, SimConfig(cold_start_seconds=60.0, initial_replicas=1))
    by_time = {v.now: v for v in recorder.views}
    assert by_time[10.0].pods == ()  # first scrape at 15 s
    assert by_time[20.0].pods[0].time == 15.0  # the scrape, not the cycle's time
    assert (by_time[110.0].spec_replicas, by_time[110.0].ready_replicas) == (3, 1)
    assert by_time[110.0].starting_ages == (10.0, 10.0)
    assert by_time[160.0].ready_replicas == 3  # ready 60 s after creation
    assert by_time[160.0].startup_samples == (60.0, 60.0)
    assert by_time[170.0].startup_samples == ()


def test_the_prompt_token_rate_is_read_over_the_rate_window() -> None:
    recorder = Recorder(scale_at=1e9, replicas=1)
    requests = steady(2.0, 400.0)  # 100-token prompts: 200 prompt tokens/s
    simulate(requests, PERF, recorder, SimConfig(cold_start_seconds=60.0, initial_replicas=1))
    by_time = {v.now: v for v in recorder.views}
    assert by_time[10.0].prompt_tokens_per_second is None  # nothing scraped yet
    assert by_time[20.0].prompt_tokens_per_second == pytest.approx(15 * 200 / 60, rel=0.05)
    assert by_time[300.0].prompt_tokens_per_second == pytest.approx(200.0, rel=0.05)


def test_lmscale_scales_up_on_load_and_back_down_after_the_window() -> None:
    spec = policy.ScalingPolicySpec(max_replicas=8, target_per_replica=2.0, startup_seconds=60.0)
    scaler = LmscaleScaler(spec)
    requests = (
        steady(1.0, 300.0) + steady(12.0, 600.0, start=300.0) + steady(1.0, 900.0, start=900.0)
    )
    run = simulate(requests, PERF, scaler, SimConfig(cold_start_seconds=60.0, initial_replicas=1))
    sizes = {round(p.time): p.replicas for p in run.timeline}
    assert max(sizes.values()) > 2
    assert sizes[1700] < max(sizes.values())
    assert len(run.completed) == len(requests)


def test_scale_down_drains_in_flight_requests() -> None:
    recorder = Recorder(scale_at=30.0, replicas=1)
    requests = [Request(float(i), 100, 400) for i in range(60)]
    run = simulate(requests, PERF, recorder, SimConfig(cold_start_seconds=60.0, initial_replicas=4))
    assert len(run.completed) == 60 and not run.dropped
    drained = [r for r in run.replicas if r.draining_since is not None]
    assert len(drained) == 3
    assert all(r.removed_at is not None and r.removed_at >= 30.0 for r in drained)
