"""The per-replica target, calibrated on the engine model instead of mean-latency formulas.

`planner.slo.target_concurrency` sizes mean TTFT and TPOT within a headroom of the
objectives; a per-request objective met by 99% of requests needs more margin, because
prompts arriving mid-generation stretch the steps of every running request. Here a
small fleet of the engine model is fed Poisson arrivals with the workload's token lengths at
increasing rates (the same random draws at every rate, so attainment falls smoothly with
load). Some requests miss the objectives even on an idle replica (a prompt too long to
prefill in time); the rest of the budget, `1 - goal`, bounds the band top (the busiest
rate per replica) twice:

- in steady state at the band top, at most `STEADY_SHARE` of the budget is lost;
- one tolerance band past it, at most the whole budget: the autoscaler acts only there,
  so a rise runs the fleet that hot until new replicas are ready.

The second rule binds where an engine saturates just past the band top (its loss jumps
within a little more load) and leaves a gently degrading one its headroom. The band top
gives the in-flight load (Little's law) one replica carries; dividing by `1 + tolerance`
keeps the top of the autoscaler's tolerance band there.

Uses only token lengths, never a trace's timing, so it does not fit any one trace.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from lmscale.policy.spec import DEFAULT_TOLERANCE
from lmscale.sim.engine import ReplicaEngine, StepModel
from lmscale.sim.request import Request
from lmscale.sim.results import Slo

SAMPLE_REQUESTS = 16000
# Bisection steps: 1/128 of the bracket, finer than the sampling noise.
ROUNDS = 7
STEADY_SHARE = 0.5
IDLE_RATE = 0.01
# Balancing pools queueing across replicas, so a lone replica would understate what each
# carries in a fleet; eight is a small fleet, conservative for larger ones.
FLEET = 8


@dataclass(frozen=True)
class SteadyState:
    """A fleet's figures at one per-replica rate."""

    attainment: float
    in_flight: float  # mean in-flight requests per replica (Little's law)
    ttft_p95: float  # seconds


def steady_state(
    perf: StepModel,
    lengths: Sequence[tuple[int, int]],
    *,
    rate: float,
    slo: Slo,
    replicas: int = FLEET,
    requests: int = SAMPLE_REQUESTS,
    seed: int = 0,
) -> SteadyState:
    """A small fleet under Poisson arrivals at `rate` per replica.

    Requests go to the replica with the fewest in flight, as the simulator's default
    balancer sends them.
    """
    rng = random.Random(seed)
    fleet = [ReplicaEngine(perf) for _ in range(replicas)]
    now, done = 0.0, []
    total = rate * replicas
    for _ in range(requests):
        now += rng.expovariate(total)
        prompt, output = lengths[rng.randrange(len(lengths))]
        for engine in fleet:
            if engine.next_change <= now:
                done.extend(engine.advance(now))
        target = min(fleet, key=lambda engine: engine.in_flight)
        done.extend(target.submit(Request(now, prompt, output), now))
    for engine in fleet:
        done.extend(engine.advance(float("inf")))
    done.sort(key=lambda c: c.request.arrival_s)
    # Skip the warm-up tenth, whose requests found empty replicas.
    steady = done[len(done) // 10 :]
    good = sum(1 for c in steady if slo.met(c))
    mean_e2e = sum(c.e2e_seconds for c in steady) / len(steady)
    ttft = sorted(c.ttft_seconds for c in steady)
    return SteadyState(good / len(steady), rate * mean_e2e, ttft[int(0.95 * (len(ttft) - 1))])


@dataclass(frozen=True)
class Calibration:
    """What one replica carries within the objectives, in a fleet, in steady state.

    `ttft_p95` is the TTFT p95 expected at the target load, published for information
    (`status.capacityPlan.autoscaling`); the policy pushes up on the SLO itself.
    `prompt_tokens_rate` is the band top in prompt tokens per second (the rate times the
    mix's mean prompt): the policy's prefill floor.
    """

    target: float  # in-flight requests to aim at (the tolerance band's middle)
    rate: float  # requests per second per replica at the band's top
    ttft_p95: float  # seconds, at the target
    curve: tuple[tuple[float, float], ...] = ()  # (in flight, rate) per replica, rising
    prompt_tokens_rate: float | None = None


def calibrate(
    perf: StepModel,
    lengths: Sequence[tuple[int, int]],
    *,
    slo: Slo,
    goal: float = 0.99,
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = 0,
) -> Calibration:
    """The busiest per-replica load within both of the module's loss rules."""
    if not lengths:
        raise ValueError("calibration needs token lengths")

    seen: dict[float, SteadyState] = {}

    def at(rate: float) -> SteadyState:
        if rate not in seen:
            seen[rate] = steady_state(perf, lengths, rate=rate, slo=slo, seed=seed)
        return seen[rate]

    idle, budget = at(IDLE_RATE).attainment, 1 - goal

    def carries(rate: float) -> bool:
        steady = at(rate).attainment >= idle - STEADY_SHARE * budget
        return steady and at(rate * (1 + tolerance)).attainment >= idle - budget

    low, high = 0.0, 1.0
    while carries(high) and high < 1e4:
        low, high = high, high * 2  # find a rate that misses
    best_rate = max(low, IDLE_RATE)
    best = at(best_rate)
    for _ in range(ROUNDS):
        middle = (low + high) / 2
        if carries(middle):
            low, best, best_rate = middle, at(middle), middle
        else:
            high = middle
    expected = at(best_rate / (1 + tolerance))
    target = max(1.0, best.in_flight / (1 + tolerance))
    mean_prompt = sum(prompt for prompt, _ in lengths) / len(lengths)
    return Calibration(
        target,
        best_rate,
        expected.ttft_p95,
        load_curve(seen, up_to=best_rate * (1 + tolerance)),
        prompt_tokens_rate=best_rate * mean_prompt,
    )


def load_curve(
    states: dict[float, SteadyState], *, up_to: float
) -> tuple[tuple[float, float], ...]:
    """`(in flight, rate)` points of the measured rates, rising in both, for the policy.

    Only rates up to `up_to`, the busiest one the loss rules accepted: past saturation a
    fleet queues without bound, so its in-flight count measures how long the sample ran,
    not a steady state, and would map a growing queue to a barely higher rate.
    """
    points: list[tuple[float, float]] = []
    for rate in sorted(r for r in states if r <= up_to):
        in_flight, rounded = round(states[rate].in_flight, 3), round(rate, 6)
        if in_flight > 0 and (
            not points or (in_flight > points[-1][0] and rounded >= points[-1][1])
        ):
            points.append((in_flight, rounded))
    return tuple(points)


def lengths_from_means(
    mean_prompt_tokens: float, mean_output_tokens: float, *, count: int = 4000, seed: int = 0
) -> list[tuple[int, int]]:
    """Token lengths with given means and a production-like spread, when no trace is known.

    Log-normal, as prompt and output lengths of chat traffic roughly are (Azure's
    conversation trace: prompt mean 1,155, median 1,020, p99 4,142).
    """
    rng = random.Random(seed)

    def draw(mean: float, sigma: float) -> int:
        mu = math.log(max(1.0, mean)) - sigma * sigma / 2
        return max(1, round(rng.lognormvariate(mu, sigma)))

    return [(draw(mean_prompt_tokens, 0.7), draw(mean_output_tokens, 0.9)) for _ in range(count)]
