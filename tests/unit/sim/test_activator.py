"""The activator in the simulator: holding at zero, waking the scaler, refusing, the signal."""

from __future__ import annotations

import pytest

from lmscale import policy
from lmscale.gateway.hold import HoldSettings
from lmscale.policy import DecisionReason
from lmscale.sim.activator import Activator, ActivatorConfig, ActivatorMode
from lmscale.sim.observe import ClusterView
from lmscale.sim.request import Request
from lmscale.sim.results import Slo, summarize
from lmscale.sim.scaler import LmscaleScaler
from lmscale.sim.simulator import SimConfig, simulate

from .fakes import LinearStep

COLD = 60.0
PERF = LinearStep(cold_start_seconds=COLD)
SPEC = policy.ScalingPolicySpec(max_replicas=4, target_per_replica=4.0)


class Waker:
    """Asks for one replica once anything is held (the activator's series or its wake),
    none before; records every cycle it ran. A long period: only a wake runs it sooner."""

    name, least_loaded_first = "waker", True

    def __init__(self, *, period_seconds: float = 120.0) -> None:
        self.period_seconds = period_seconds
        self.views: list[ClusterView] = []

    def desired(self, view: ClusterView) -> int:
        self.views.append(view)
        seen = LmscaleScaler(SPEC).observation(view)
        return 1 if view.spec_replicas or (seen.load or seen.wake_requested_at) else 0


def config(**activator: object) -> SimConfig:
    return SimConfig(cold_start_seconds=COLD, initial_replicas=0,
                     activator=ActivatorConfig(**activator))  # type: ignore[arg-type]


def figures(run: object) -> dict[str, object]:
    return summarize(run, slo=Slo(1.0, 0.1), gpus_per_replica=1,  # type: ignore[arg-type]
                     cost_per_replica_hour=1.0, wall_seconds=1.0)


def test_a_held_request_wakes_the_scaler_within_the_wake_latency_not_the_period() -> None:
    scaler = Waker()
    request = Request(5.0, 100, 20)
    run = simulate([request, Request(300.0, 100, 20)], PERF, scaler,
                   config(wake_latency_seconds=1.5))
    # woken, again at each of the Waker's repeats while it holds, then the period
    assert [v.now for v in scaler.views][:3] == [6.5, 11.5, 16.5]
    assert [v.wake_requested_at for v in scaler.views][:2] == [5.0, 10.0]
    assert [v.now for v in scaler.views][-2:] == [66.5, 186.5]  # held until ready at 66.5
    first = next(c for c in run.completed if c.request is request)
    # held through the wake latency and the cold start, then released to the new replica
    assert first.admitted_s == pytest.approx(6.5 + COLD)
    assert figures(run)["held"] == 1


def test_held_requests_are_released_to_the_first_ready_replica_in_order() -> None:
    held = [Request(5.0 + i, 100, 20) for i in range(4)]
    run = simulate(held, PERF, Waker(), config(wake_latency_seconds=0.0))
    done = sorted(run.completed, key=lambda c: c.admitted_s)
    assert [c.request for c in done] == held
    assert {c.admitted_s for c in done} == {5.0 + COLD}
    assert len({r.id for r in run.replicas}) == 1
    assert run.activator is not None and run.activator.waits == [COLD - i for i in range(4)]


def test_past_the_hold_timeout_a_request_is_refused_and_a_miss() -> None:
    held = [Request(1.0, 100, 20), Request(50.0, 100, 20)]
    run = simulate(held, PERF, Waker(),
                   config(wake_latency_seconds=0.0, hold=HoldSettings(timeout_s=30.0)))
    summary = figures(run)
    # the first waits past its 30 s (the replica is ready at 61), the second is released
    assert [r.arrival_s for r in run.activator.timed_out] == [1.0]  # type: ignore[union-attr]
    assert summary["timed_out"] == 1 and summary["completed"] == 1
    assert summary["dropped"] == 0  # counted apart from engine drops
    assert summary["slo_attainment"] == 0.0  # one timed out, one waited a cold start


def test_a_full_hold_queue_rejects_at_once() -> None:
    burst = [Request(1.0 + i / 10, 100, 20) for i in range(5)]
    run = simulate(burst, PERF, Waker(), config(hold=HoldSettings(capacity=2)))
    summary = figures(run)
    assert (summary["held"], summary["rejected"], summary["completed"]) == (2, 3, 2)
    assert [r.arrival_s for r in run.activator.rejected] == [  # type: ignore[union-attr]
        r.arrival_s for r in burst[2:]]


def test_the_arrival_rate_reaches_the_policy_as_the_front_door_signal() -> None:
    steady = [Request(i / 2, 100, 20) for i in range(1200)]  # 2 per second for 10 min
    warm = {"cold_start_seconds": COLD, "initial_replicas": 1}
    always = Waker(period_seconds=30.0)
    simulate(steady, PERF, always, SimConfig(**warm, activator=ActivatorConfig(  # type: ignore[arg-type]
        mode=ActivatorMode.ALWAYS)))
    seen = LmscaleScaler(SPEC).observation(always.views[-1])
    assert seen.front_arrivals_per_second == pytest.approx(2.0, rel=0.05)
    assert seen.held == 0.0
    # In front only at zero, the activator counts nothing while a replica serves.
    zero = Waker(period_seconds=30.0)
    simulate(steady, PERF, zero, SimConfig(**warm, activator=ActivatorConfig()))  # type: ignore[arg-type]
    assert zero.views[-1].front is not None
    assert zero.views[-1].front.arrivals_per_second == 0.0


def test_the_operators_policy_wakes_from_zero_and_idles_back() -> None:
    spec = policy.ScalingPolicySpec(max_replicas=4, target_per_replica=4.0, scale_to_zero=True,
                                    idle_seconds=300.0)
    scaler = LmscaleScaler(spec)
    requests = [*(Request(100.0 + i, 100, 20) for i in range(20)), Request(1500.0, 100, 20),
                Request(1700.0, 100, 20)]
    run = simulate(requests, PERF, scaler, config(wake_latency_seconds=1.0))
    reasons = [d.reason for d in scaler.decisions]
    assert reasons == [DecisionReason.ACTIVATE_FROM_ZERO, DecisionReason.IDLE_SCALE_TO_ZERO,
                       DecisionReason.ACTIVATE_FROM_ZERO]
    # woken by the first held request one second later, not at the 10 s period
    assert next(p.time for p in run.timeline if p.replicas) == pytest.approx(101.0)
    assert next(p.time for p in run.timeline if p.time > 1000 and p.replicas) == (
        pytest.approx(1501.0))
    assert figures(run)["completed"] == 22


def test_a_repeated_wake_due_now_always_goes_out() -> None:
    """At 31.48... the sum of the interval reads as due while the difference rounds below
    it: the event must still fire, or the replay loops on it forever."""
    arrived = 31.4830598520488
    assert (arrived + 5.0) - arrived < 5.0
    front = Activator(ActivatorConfig())
    assert not front.arrive(Request(arrived, 100, 20), arrived, ready=0)
    due = front.next_event
    assert front.on_event(due)
    assert front.next_event > due
