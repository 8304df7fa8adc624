"""Each baseline against its documented algorithm."""

from __future__ import annotations

import pytest

from lmscale.sim.baselines import hpa_gpu_util, keda_queue, oracle, static, static_peak
from lmscale.sim.engine import EngineMetrics
from lmscale.sim.observe import ClusterView
from lmscale.sim.request import Request

from .fakes import LinearStep


def view(
    now: float,
    *,
    replicas: int,
    busy: float = 0.0,
    waiting: int = 0,
    starting: int = 0,
    reporting: int | None = None,
) -> ClusterView:
    ready = replicas - starting
    held = waiting if ready == 0 else 0  # with no replica, the gateway holds requests
    pods = tuple(
        EngineMetrics(now, waiting if i == 0 else 0, 1, 0.1, busy)
        for i in range(ready if reporting is None else reporting)
    )
    return ClusterView(
        now=now,
        spec_replicas=replicas,
        ready_replicas=ready,
        starting_ages=(10.0,) * starting,
        pods=pods,
        ttft_p95_seconds=None,
        startup_samples=(),
        gateway_waiting=held,
    )


@pytest.mark.parametrize(
    ("utilizations", "ready", "unready", "current", "expected"),
    [
        pytest.param([0.7, 0.7], 2, 0, 2, 2, id="on-target"),
        pytest.param([0.76, 0.76], 2, 0, 2, 2, id="within-tolerance"),
        pytest.param([1.0, 1.0], 2, 0, 2, 3, id="busy-ceil-ratio-times-pods"),
        pytest.param([1.0] * 4, 4, 0, 4, 6, id="dcgm-saturated"),
        pytest.param([0.1, 0.1, 0.1, 0.1], 4, 0, 4, 1, id="idle-scales-down"),
        pytest.param([1.0, 1.0], 2, 2, 4, 4, id="unready-count-as-zero-hold"),
        pytest.param([1.0, 1.0], 4, 0, 4, 4, id="missing-as-zero-on-scale-up"),
        pytest.param([0.35, 0.35], 4, 0, 4, 3, id="missing-on-target-on-scale-down"),
        pytest.param([], 2, 0, 2, 2, id="no-metrics-no-change"),
    ],
)
def test_hpa_replica_calculator(
    utilizations: list[float], ready: int, unready: int, current: int, expected: int
) -> None:
    got = hpa_gpu_util.replica_count(
        current=current, utilizations=utilizations, ready=ready, unready=unready, target=0.7
    )
    assert got == expected


def test_hpa_scale_up_rate_is_plus_four_or_double_per_15s() -> None:
    hpa = hpa_gpu_util.HpaGpuUtilScaler(target=0.1, max_replicas=100)
    assert hpa.desired(view(15.0, replicas=10, busy=1.0)) == 20  # max(10 + 4, 2 * 10)
    assert hpa.desired(view(30.0, replicas=2, busy=1.0)) == 6  # max(2 + 4, 2 * 2)


def test_hpa_scale_down_waits_for_the_300s_window() -> None:
    hpa = hpa_gpu_util.HpaGpuUtilScaler(target=0.7)
    assert hpa.desired(view(0.0, replicas=4, busy=0.7)) == 4
    for now in range(15, 300, 15):
        assert hpa.desired(view(float(now), replicas=4, busy=0.1)) == 4
    assert hpa.desired(view(315.0, replicas=4, busy=0.1)) == 1


@pytest.mark.parametrize(
    ("value", "current", "expected"),
    [
        pytest.param(20.0, 2, 4, id="ceil-value-over-threshold"),
        pytest.param(21.0, 2, 5, id="rounds-up"),
        pytest.param(10.5, 2, 2, id="within-tolerance"),
        pytest.param(0.0, 4, 0, id="empty-queue-asks-for-zero"),
    ],
)
def test_keda_external_metric_replicas(value: float, current: int, expected: int) -> None:
    assert keda_queue.external_replicas(value=value, threshold=5.0, current=current) == expected


def test_keda_scales_to_min_on_an_empty_queue_after_the_window() -> None:
    keda = keda_queue.KedaQueueScaler(threshold=5.0, min_replicas=1)
    assert keda.period_seconds == 30.0
    assert keda.desired(view(0.0, replicas=4, waiting=0)) == 4
    assert keda.desired(view(270.0, replicas=4, waiting=0)) == 4  # the new HPA's window
    assert keda.desired(view(330.0, replicas=4, waiting=0)) == 1


def test_keda_scales_up_on_waiting_requests() -> None:
    keda = keda_queue.KedaQueueScaler(threshold=5.0)
    assert keda.desired(view(30.0, replicas=2, waiting=40)) == 6  # ceil(40/5)=8, +4 limit


def test_keda_activates_from_zero_and_cools_down() -> None:
    keda = keda_queue.KedaQueueScaler(threshold=5.0, min_replicas=0)
    assert keda.desired(view(0.0, replicas=0, waiting=3)) == 1
    assert keda.desired(view(30.0, replicas=1, waiting=0)) == 1
    assert keda.desired(view(270.0, replicas=1, waiting=0)) == 1
    assert keda.desired(view(300.0, replicas=1, waiting=0)) == 0  # cooldownPeriod elapsed


def test_static_never_changes() -> None:
    assert static.StaticScaler(3).desired(view(99.0, replicas=1)) == 3


@pytest.mark.parametrize(
    ("needed", "expected"),
    [
        pytest.param(5, 5, id="found"),
        pytest.param(1, 1, id="one-suffices"),
        pytest.param(99, 8, id="none-reaches-take-max"),
    ],
)
def test_static_peak_finds_the_fewest_replicas(needed: int, expected: int) -> None:
    tried: list[int] = []

    def attainment_of(replicas: int) -> tuple[float, object]:
        tried.append(replicas)
        return (0.995 if replicas >= needed else 0.9), f"run-{replicas}"

    chosen, run = static_peak.search(attainment_of, goal=0.99, low=1, high=8)  # type: ignore[arg-type]
    assert (chosen, run) == (expected, f"run-{expected}")
    assert len(tried) <= 5


def test_oracle_demand_is_time_averaged_in_flight() -> None:
    perf = LinearStep(fixed=0.0, per_prompt_token=0.01)  # prefill of 100 tokens: 1 s
    requests = [Request(0.0, 100, 11), Request(10.0, 100, 1)]  # 1 + 10*0.5 s, then 1 s
    demand = oracle.mean_in_flight(requests, perf=perf, tpot_seconds=0.5, bin_seconds=5.0)
    assert demand == pytest.approx([1.0, 0.2, 0.2])


def test_oracle_starts_replicas_one_cold_start_ahead() -> None:
    scaler = oracle.OracleScaler([1, 1, 1, 4, 4, 1], lead_seconds=60.0, bin_seconds=30.0)
    assert scaler.desired(view(0.0, replicas=1)) == 1
    assert scaler.desired(view(35.0, replicas=1)) == 4  # needed from 90 s, ready by then
    assert scaler.desired(view(150.0, replicas=4)) == 1  # stopped as soon as not needed


def test_oracle_search_takes_the_loosest_factor_meeting_the_goal() -> None:
    def attainment_of(factor: float) -> tuple[float, object]:
        return (0.995 if factor <= 1.2 else 0.98), factor

    factor, _ = oracle.search(attainment_of, goal=0.99, low=0.25, high=2.0, rounds=8)
    assert 1.15 <= factor <= 1.2
