"""The three failure shapes, as small hand-built traces through `decide()`.

A fluid fleet stands in for the engines: each ready replica finishes requests up to the
load curve's last rate, the rest queues; in-flight is what the curve holds at the rate
carried plus the queue; completions are a 60 s mean, as `rate()[1m]` reads them. Replicas
asked for serve after `STARTUP` seconds.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from lmscale.policy import (
    DecisionReason,
    Observation,
    ScalingHistory,
    ScalingPolicySpec,
    decide,
    loadcurve,
    volatility,
)
from lmscale.policy.arrivals import backlog, estimate, leading

from .builders import make_spec

# 20 in flight carry 2.5 req/s per replica (the target); 30 in flight, 3.0 req/s, is the
# busiest steady state.
CURVE = ((20.0, 2.5), (30.0, 3.0))
PER_REPLICA = 2.5
BAND_TOP = PER_REPLICA * 1.1  # the top of the default tolerance band
TOP = 3.0
STARTUP = 110.0
PERIOD = 10.0
REACTION = STARTUP + 15.0 + PERIOD


def spec(**overrides: object) -> ScalingPolicySpec:
    base: dict[str, object] = {
        "max_replicas": 64,
        "target_per_replica": 20.0,
        "load_curve": CURVE,
        "startup_seconds": STARTUP,
    }
    base.update(overrides)
    return make_spec(**base)


@dataclass
class FluidFleet:
    """Replicas that carry up to `TOP` req/s each; requests are conserved: in-flight grows
    by what arrives and shrinks by what completes, towards what the curve holds steadily."""

    ready: int
    in_flight: float = 0.0
    starting: list[float] = field(default_factory=list)  # ready-at times
    completions: deque[float] = field(default_factory=lambda: deque(maxlen=6))

    def step(self, now: float, rate: float) -> None:
        """Arrivals at `rate` for one period ending at `now`."""
        for at in [t for t in self.starting if t <= now]:
            self.starting.remove(at)
            self.ready += 1
        steady = self.ready * loadcurve.in_flight_of(CURVE, rate / max(1, self.ready))
        served = max(0.0, min(self.ready * TOP, rate + (self.in_flight - steady) / PERIOD))
        self.in_flight += (rate - served) * PERIOD
        self.completions.append(served)

    def observe(self) -> Observation:
        running = min(self.in_flight, self.ready * CURVE[-1][0])
        return Observation(
            spec_replicas=self.ready + len(self.starting),
            ready_replicas=self.ready,
            starting_replicas=len(self.starting),
            waiting=self.in_flight - running,
            running=running,
            completions_per_second=sum(self.completions) / len(self.completions),
        )

    def scale_to(self, now: float, replicas: int) -> None:
        while self.ready + len(self.starting) < replicas:
            self.starting.append(now + STARTUP)
        while self.ready + len(self.starting) > replicas:
            if self.starting:
                self.starting.pop()
            else:
                self.ready -= 1


def run(
    policy: ScalingPolicySpec,
    rate: Callable[[float], float],
    *,
    ready: int,
    seconds: float,
    history: ScalingHistory | None = None,
    start: float = 0.0,
) -> tuple[list[tuple[float, int]], ScalingHistory]:
    """(time, replicas) per cycle through the fluid fleet, and the final history."""
    fleet = FluidFleet(ready=ready)
    fleet.in_flight = ready * loadcurve.in_flight_of(CURVE, rate(start) / ready)
    fleet.completions.extend([rate(start)] * 6)
    history = history or ScalingHistory()
    out = []
    now = start
    while now < start + seconds:
        now += PERIOD
        fleet.step(now, rate(now))
        decision = decide(policy, fleet.observe(), history, now=now)
        history = decision.history
        fleet.scale_to(now, decision.replicas)
        out.append((now, decision.replicas))
    return out, history


def test_arrival_rate_is_completions_plus_the_rise_of_in_flight() -> None:
    samples = ((0.0, 60.0, 7.5), (10.0, 160.0, 9.0))
    # 600 more in flight over 60 s, 9 completing per second: 19 arriving per second.
    assert estimate(samples, now=60.0, in_flight=660.0, completions=9.0) == 19.0
    assert estimate((), now=60.0, in_flight=660.0, completions=9.0) == 9.0


def test_a_rise_reads_in_full_over_three_scrapes_not_a_whole_window() -> None:
    # Flat at 60 in flight for 20 s, then 600 more within the last 40 s (9 completing/s).
    samples = tuple((float(t), 60.0 if t <= 20 else 60.0 + 15.0 * (t - 20), 9.0) for t in
                    range(0, 60, 10))
    assert estimate(samples, now=60.0, in_flight=660.0, completions=9.0) == 19.0
    # The oldest sample within 45 s (at 20 s) is the reference: 600 over 40 s.
    assert leading(samples, now=60.0, in_flight=660.0, completions=9.0) == 24.0
    # It never reads less than the window does (a fall shows over the whole window).
    falling = tuple((float(t), 660.0 - 10.0 * t, 9.0) for t in range(0, 60, 10))
    assert leading(falling, now=60.0, in_flight=60.0, completions=9.0) == estimate(
        falling, now=60.0, in_flight=60.0, completions=9.0
    )


def test_backlog_is_what_the_ready_replicas_hold_beyond_steady_state() -> None:
    observation = Observation(spec_replicas=3, ready_replicas=3, waiting=600.0, running=90.0)
    # 9 req/s on 3 replicas is past the curve's end: 30 each is all they hold steadily.
    assert backlog(spec(), observation, rate=9.0, load=690.0) == 600.0
    # 7.5 req/s steadily keeps 20 each in flight: nothing queued beyond.
    assert backlog(spec(), observation, rate=7.5, load=60.0) == 0.0


def test_a_burst_after_a_quiet_spell_scales_up_once_without_a_cascade() -> None:
    """3 replicas at 7.5 req/s; arrivals jump to 70 req/s. 28 carry 70 at the target.

    In-flight sizing chased the queue that builds during the cold start (3 -> 7 -> 14 ->
    28 -> 56 -> 64); arrivals size for the rate, plus at most one tolerance band for the
    backlog and the 3 replicas that hold it. (On the code before arrivals, this trace
    reached 64.)
    """
    policy = spec()
    trace, _ = run(policy, lambda t: 7.5 if t < 300 else 70.0, ready=3, seconds=900)
    replicas = [n for _, n in trace]
    need = math.ceil(70.0 / PER_REPLICA)
    bound = math.ceil(70.0 * (1 + policy.tolerance) / PER_REPLICA) + 3
    assert max(replicas) <= bound, replicas
    assert replicas[-1] >= need
    # It rises while the 60 s arrival estimate catches up, then stays: no step after the
    # estimate settled, so no step from the queue that grows during the cold start.
    after_minute = [n for t, n in trace if t >= 300 + 60 + 15]
    assert len(set(after_minute)) <= 2, after_minute
    assert all(b >= a for a, b in zip(replicas, replicas[1:], strict=False) if a > 3)


def learn(
    policy: ScalingPolicySpec, rate: Callable[[float], float], *, ready: int, hours: float
) -> tuple[list[tuple[float, int]], ScalingHistory]:
    return run(policy, rate, ready=ready, seconds=hours * 3600)


def swell(t: float) -> float:
    """20 req/s rising to 30 within two minutes every ten minutes, then back."""
    phase = t % 600
    if phase < 120:
        return 20.0 + 10.0 * phase / 120
    if phase < 240:
        return 30.0 - 10.0 * (phase - 120) / 120
    return 20.0


def test_the_fleet_keeps_the_learned_headroom_after_a_fall() -> None:
    """A load that rises 1.5x within a reaction time falls to a third for five minutes.

    The fleet keeps what the learned rise from the low needs, not what the low needs
    alone, so the next rise lands on capacity already there. (Before the learned headroom,
    the fleet fell to the 4 replicas the low needs.)
    """
    policy = spec()
    _, history = learn(policy, swell, ready=10, hours=3)
    rise = volatility.headroom(history.volatility)
    assert 1.3 <= rise <= 1.6
    start = 3 * 3600.0
    trace, _ = run(
        policy,
        lambda t: 10.0 if t < start + 600 else 20.0,
        ready=12,
        seconds=600,
        history=history,
        start=start,
    )
    low_need = math.ceil(10.0 / PER_REPLICA)
    kept = [n for t, n in trace if t >= start + 420]  # after the scale-down window
    assert min(kept) >= math.ceil(rise * 10.0 / BAND_TOP) > low_need, kept


def spikes(t: float) -> float:
    """10 req/s with a 60 s burst to 25 req/s every eight minutes."""
    return 25.0 if t % 480 < 60 else 10.0


def test_bursts_shorter_than_the_reaction_time_are_absorbed_not_chased() -> None:
    """Each burst is gone before a replica asked for it could serve (reaction 135 s).

    Once the bursts are learned the fleet holds their amplitude and stops scaling after
    each one and back down. (Chasing them, the fleet went up and down every burst.)
    """
    policy = spec()
    trace, history = learn(policy, spikes, ready=4, hours=3)
    last_hour = [(t, n) for t, n in trace if t >= 2 * 3600]
    changes = sum(1 for (_, a), (_, b) in zip(last_hour, last_hour[1:], strict=False) if a != b)
    assert changes == 0, sorted({n for _, n in last_hour})
    amplitude = math.ceil(25.0 / PER_REPLICA)
    assert last_hour[0][1] >= amplitude
    assert volatility.headroom(history.volatility) >= 2.5
    assert (
        volatility.floor(
            history.volatility, [(0.0, 10.0)], now=0.0, reaction=REACTION, per_replica=PER_REPLICA
        )[0]
        >= amplitude
    )


def test_headroom_is_reported_in_the_persisted_history_and_survives_a_restart() -> None:
    policy = spec()
    _, history = learn(policy, spikes, ready=4, hours=1)
    body = history.to_json()
    again = ScalingHistory.from_json(body)
    assert again.volatility == history.volatility
    assert '"headroom":' in body


def test_an_idle_resource_learns_nothing_and_rewrites_nothing() -> None:
    policy = spec()
    _, history = learn(policy, spikes, ready=4, hours=1)
    quiet, later = run(policy, lambda t: 0.0, ready=4, seconds=1800, history=history, start=3600.0)
    # Once the samples of the last arrivals age out, nothing about the rise changes.
    assert (
        later.volatility
        == run(policy, lambda t: 0.0, ready=4, seconds=900, history=history, start=3600.0)[
            1
        ].volatility
    )
    assert all(n >= 1 for _, n in quiet)


def bursts_after_quiet(t: float) -> float:
    """2 req/s with a four-minute burst to 25 req/s every ten minutes."""
    return 25.0 if t % 600 < 240 else 2.0


def test_an_idle_resource_lets_go_of_the_learned_headroom() -> None:
    """Bursts from a quiet level to the peak learned for an hour, then nothing arrives.

    The learned rise is past the last edge, where the floor holds the decaying peak; but it
    holds nothing while next to nothing arrives: the fleet goes down to `minReplicas`
    within the scale-down window and a couple of periods, and the learned rise stays for
    the next load. (The peak decays only under load, so the fleet stayed at the bursts'
    peak for as long as it was idle: 13 replicas after 20 minutes without a request.)
    """
    policy = spec()
    _, history = learn(policy, bursts_after_quiet, ready=2, hours=1)
    assert volatility.headroom(history.volatility) == volatility.TOP_RISE
    start = 3600.0
    quiet, later = run(policy, lambda t: 0.0, ready=10, seconds=1200, history=history, start=start)
    down = min((t for t, n in quiet if n == policy.min_replicas), default=math.inf) - start
    window = policy.scale_down.stabilization_window_seconds
    assert down <= window + 120, quiet[-5:]
    assert all(n == policy.min_replicas for t, n in quiet if t - start >= down), quiet
    assert volatility.headroom(later.volatility) == volatility.TOP_RISE


def test_without_a_completion_rate_the_in_flight_sizing_is_kept() -> None:
    policy = spec()
    observation = Observation(spec_replicas=4, ready_replicas=4, waiting=0.0, running=120.0)
    decision = decide(policy, observation, ScalingHistory(), now=0.0)
    assert decision.reason is DecisionReason.LOAD_ABOVE_TARGET
    assert "in-flight requests" in decision.message
