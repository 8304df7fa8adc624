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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from lmscale.policy.spec import DEFAULT_TOLERANCE
from lmscale.sim import probe
from lmscale.sim.engine import ReplicaEngine, StepModel
from lmscale.sim.request import CompletedRequest, Request
from lmscale.sim.results import Slo

SAMPLE_REQUESTS = 16000
# The band top is bracketed to within this fraction (finer than the sampling noise).
PRECISION = 0.02
# Where the search starts, as a share of the step model's saturation rate; the steady
# rule's first guess is never below LEAST_GUESS of it.
FIRST_GUESS = 0.85
LEAST_GUESS = 0.1
# The loss as a power of the rate near the band top. Where one side of a floor is not
# measured yet: a steep exponent where the band rule is expected to bind (the engine
# saturates: the loss jumps), a gentle one where the steady rule is (the idle latencies
# leave little headroom, so the loss grows with any load): GENTLE_SHARE of the exponent
# at which both rules bind at once (below it the steady one binds). Measured exponents
# are kept within MIN_SLOPE and MAX_SLOPE; a loss under LOSS_FLOOR times less than a
# floor allows tells little about the exponent (no loss at all would make it infinite).
STEEP_SLOPE, GENTLE_SHARE = 15.0, 0.8
MIN_SLOPE, MAX_SLOPE = 2.0, 60.0
LOSS_FLOOR = 20.0
NEAR = 1 + 4 * PRECISION
MAX_RATE = 1e4
# Lighter loads measured for the load curve only, as fractions of the band top, each on a
# run long enough for its in-flight count to settle (the busier, the longer the fill-up).
# (The busiest point below the top is the full state at top / (1 + tolerance).)
CURVE_POINTS = ((0.25, 2000), (0.5, 2000), (0.7, 4000))
# The state at the tolerance band's middle, for its TTFT p95 and the curve: busier than
# the curve's points, so a longer run.
EXPECTED_REQUESTS = 8000
# Bisection steps of the reference search: 1/128 of the bracket.
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


def _draws(lengths: Sequence[tuple[int, int]], *, rate: float, replicas: int, requests: int,
           seed: int) -> Iterator[tuple[float, int, int]]:
    """Arrival times and token lengths: the same random draws at every rate, only the
    gaps scaled, so attainment falls smoothly with load."""
    rng = random.Random(seed)
    now, total, count = 0.0, rate * replicas, len(lengths)
    for _ in range(requests):
        now += rng.expovariate(total)
        prompt, output = lengths[rng.randrange(count)]
        yield now, prompt, output


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
    balancer sends them. Replicas are advanced only when one of them is due (`soonest`),
    not at every arrival: the same steps, fewer calls.
    """
    fleet = [ReplicaEngine(perf) for _ in range(replicas)]
    counts = [0] * replicas
    done: list[CompletedRequest] = []
    soonest = math.inf

    def collect(index: int, finished: list[CompletedRequest]) -> None:
        counts[index] -= len(finished)
        done.extend(finished)

    for now, prompt, output in _draws(lengths, rate=rate, replicas=replicas,
                                      requests=requests, seed=seed):
        if soonest <= now:
            soonest = math.inf
            for index, engine in enumerate(fleet):
                if engine.next_change <= now:
                    collect(index, engine.advance(now))
                soonest = min(soonest, engine.next_change)
        index = counts.index(min(counts))
        engine = fleet[index]
        collect(index, engine.submit(Request(now, prompt, output), now))
        counts[index] += 1
        soonest = min(soonest, engine.next_change)
    for index, engine in enumerate(fleet):
        collect(index, engine.advance(math.inf))
    done.sort(key=lambda c: c.request.arrival_s)
    # Skip the warm-up tenth, whose requests found empty replicas.
    return _state(done[len(done) // 10 :], rate=rate, slo=slo)


def _state(steady: Sequence[CompletedRequest], *, rate: float, slo: Slo) -> SteadyState:
    good = sum(1 for c in steady if slo.met(c))
    mean_e2e = sum(c.e2e_seconds for c in steady) / len(steady)
    ttft = sorted(c.ttft_seconds for c in steady)
    return SteadyState(good / len(steady), rate * mean_e2e, ttft[int(0.95 * (len(ttft) - 1))])


def idle_state(
    perf: StepModel,
    lengths: Sequence[tuple[int, int]],
    *,
    slo: Slo,
    replicas: int = FLEET,
    requests: int = SAMPLE_REQUESTS,
    seed: int = 0,
    draws: probe.Draws | None = None,
    solo: dict[tuple[int, int], tuple[float, float]] | None = None,
) -> SteadyState:
    """`steady_state` at `IDLE_RATE`, from each distinct length served alone once.

    At that rate a request arrives every few seconds at a fleet that finishes it well
    before the next one, so the least-loaded replica is always empty and each request's
    latency depends on its lengths only: the same sample, without the runs in between.
    The figures are `_state`'s, from the same floats (`draws`: `probe.Draws` of this
    sample, made here if not given; `solo`: the times of lengths served alone, filled in).
    """
    if draws is None:
        draws = probe.Draws.make(lengths, requests=requests, seed=seed)
    arrivals = draws.arrivals(IDLE_RATE * replicas, requests)
    ttft_limit = math.inf if slo.ttft_seconds is None else slo.ttft_seconds
    tpot_limit = math.inf if slo.tpot_seconds is None else slo.tpot_seconds
    solo = {} if solo is None else solo
    good, e2e_sum, ttfts = 0, 0.0, []
    for serial in range(requests // 10, requests):
        arrival, prompt, output = arrivals[serial], draws.prompts[serial], draws.outputs[serial]
        alone = solo.get((prompt, output))
        if alone is None:
            alone = solo[prompt, output] = probe.solo(perf, prompt, output)
        first, finished = arrival + alone[0], arrival + alone[1]
        ttft = first - arrival
        if ttft <= ttft_limit and (output <= 1 or (finished - first) / (output - 1)
                                   <= tpot_limit):
            good += 1
        e2e_sum += finished - arrival
        ttfts.append(ttft)
    count = len(ttfts)
    ttfts.sort()
    return SteadyState(good / count, IDLE_RATE * (e2e_sum / count),
                       ttfts[int(0.95 * (count - 1))])


def headroom(perf: StepModel, draws: probe.Draws, *, slo: Slo, attainment: float,
             requests: int = SAMPLE_REQUESTS,
             solo: dict[tuple[int, int], tuple[float, float]] | None = None) -> float:
    """How many times slower than alone the sample's steady requests may be served
    before more than `1 - attainment` of them miss an objective: each objective over
    that quantile of the idle TTFT or TPOT, the lesser (inf without objectives). `solo`:
    times of lengths served alone, as `idle_state` keeps them."""
    solo = {} if solo is None else solo
    ttfts, tpots = [], []
    for serial in range(requests // 10, requests):
        prompt, output = draws.prompts[serial], draws.outputs[serial]
        alone = solo.get((prompt, output))
        if alone is None:
            alone = solo[prompt, output] = probe.solo(perf, prompt, output)
        ttfts.append(alone[0])
        if output > 1:
            tpots.append((alone[1] - alone[0]) / (output - 1))
    found = math.inf
    for limit, values in ((slo.ttft_seconds, ttfts), (slo.tpot_seconds, tpots)):
        if limit is not None and values:
            values.sort()
            quantile = values[min(len(values) - 1, max(0, int(attainment * len(values))))]
            found = min(found, limit / quantile if quantile > 0 else math.inf)
    return found


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
    """The busiest per-replica load within both of the module's loss rules.

    Every verdict the result rests on is a full steady state (`steady_state`, the same
    sample as `calibrate_by_bisection`): the returned rate passes both rules there and a
    rate at most `PRECISION` busier fails one. What makes it cheap is how few states it
    runs: the idle one from solo requests (`idle_state`), first guesses from the step
    model's saturation rate (the band rule) and from the headroom the idle latencies
    leave (the steady rule), one state per candidate (on the rule expected to bind; the
    other only for the last one), each candidate where a power law through the nearest
    measured losses meets that rule, and failing states stopped as soon as enough of
    their requests are certain to miss.
    """
    if not lengths:
        raise ValueError("calibration needs token lengths")
    search = _Search(perf, lengths, slo=slo, goal=goal, tolerance=tolerance, seed=seed)
    best_rate = search.band_top()
    return search.result(best_rate)


class _Search:
    """The probes run so far and the two loss rules, for one calibration.

    A probe is `probe.Probe`: the reference's steps at about twice the speed. A verdict
    only needs to know which side of a floor a rate lies, so a probe that falls below it
    stops there (exactly: its misses already exceed what the floor allows) and reports the
    attainment of the requests it finished, enough to place the next step.

    Both rules are read off one attainment curve, so every probe informs both. Each
    candidate band top is placed where the loss, a power of the rate through the nearest
    measured losses, meets the rule expected to bind, and is judged on that rule alone;
    the one the search ends on is judged on both.
    """

    def __init__(self, perf: StepModel, lengths: Sequence[tuple[int, int]], *, slo: Slo,
                 goal: float, tolerance: float, seed: int) -> None:
        self.perf, self.lengths, self.slo, self.seed = perf, lengths, slo, seed
        self.band = 1 + tolerance
        self.draws = probe.Draws.make(lengths, requests=SAMPLE_REQUESTS, seed=seed)
        solo: dict[tuple[int, int], tuple[float, float]] = {}
        idle = idle_state(perf, lengths, slo=slo, seed=seed, draws=self.draws, solo=solo)
        budget = 1 - goal
        # The lowest attainment each rule accepts: in steady state (at the band top), and
        # one tolerance band past it.
        self.steady_floor = idle.attainment - STEADY_SHARE * budget
        self.band_floor = idle.attainment - budget
        self.idle = idle.attainment
        self.seen: dict[float, SteadyState] = {IDLE_RATE: idle}
        self.probes: dict[tuple[float, int], probe.Probe] = {}
        # Whole-sample attainments, exact or (for a stopped probe) of the requests it
        # finished, which lie below the floor it stopped at.
        self.attainments: dict[float, float] = {}
        # First guesses, before anything is measured: the band rule binds a little below
        # the step model's saturation rate; the steady rule where the latencies have grown
        # by the headroom the idle ones leave, taking them to grow in proportion to the
        # load (a guess, and a low one: batching absorbs some of it).
        saturation = saturation_rate(perf, lengths)
        room = headroom(perf, self.draws, slo=slo, attainment=self.steady_floor, solo=solo)
        self.first_band = FIRST_GUESS * saturation
        self.first_steady = saturation * max(LEAST_GUESS, room - 1)
        # The loss grows by 1 / STEADY_SHARE from the band top to one band past it where
        # both rules bind at once.
        even = math.log(1 / STEADY_SHARE) / math.log(self.band) if tolerance > 0 else math.inf
        gentle = self.first_steady < self.first_band / self.band
        self.slope = GENTLE_SHARE * even if gentle else max(STEEP_SLOPE, 2 * even)

    def _probe(self, rate: float, requests: int) -> probe.Probe:
        if (rate, requests) not in self.probes:
            self.probes[rate, requests] = probe.Probe(
                self.perf, self.draws, rate=rate, ttft_limit=self.slo.ttft_seconds,
                tpot_limit=self.slo.tpot_seconds, replicas=FLEET, requests=requests)
        return self.probes[rate, requests]

    def at(self, rate: float, requests: int = SAMPLE_REQUESTS) -> SteadyState:
        """The whole state at `rate`: the reference's own figures."""
        outcome = self._probe(rate, requests).finish()
        state = SteadyState(outcome.attainment, outcome.in_flight, outcome.ttft_p95)
        if requests == SAMPLE_REQUESTS:
            self.seen[rate] = state
            self.attainments[rate] = state.attainment
        return state

    def carries(self, rate: float, floor: float) -> bool:
        """Whether `rate` keeps the attainment at or above `floor` on the whole sample."""
        outcome = self._probe(rate, SAMPLE_REQUESTS).finish(stop_below=floor)
        if outcome.stopped:
            if rate not in self.seen:
                self.attainments[rate] = outcome.attainment
        else:
            self.at(rate)
        return outcome.attainment >= floor

    def _checks(self, rate: float) -> list[tuple[float, float]]:
        """The two verdicts a band top needs, the rule expected to bind first."""
        checks = [(rate, self.steady_floor), (rate * self.band, self.band_floor)]
        if self._band_crossing() / self.band < self._steady_crossing():
            checks.reverse()
        return checks

    def _steady_crossing(self) -> float:
        return self._crossing(self.steady_floor, self.first_steady)

    def _band_crossing(self) -> float:
        return self._crossing(self.band_floor, self.first_band)

    def _crossing(self, floor: float, first: float) -> float:
        """Where the loss reaches what `floor` allows: a power of the rate through the
        nearest measured losses either side of it, or from the nearest one with the
        expected exponent (when only one side is measured, or the loss below tells
        little about it, halfway in logs between that and the power through both)."""
        limit = max(self.idle - floor, 1e-9)  # no loss allowed: aim just above none
        points = sorted((rate, max(self.idle - attainment, limit / LOSS_FLOOR))
                        for rate, attainment in self.attainments.items())
        above = [(r, loss) for r, loss in points if loss > limit]
        below = [(r, loss) for r, loss in points
                 if loss <= limit and (not above or r < above[0][0])]
        if not above and not below:
            return first
        if above and below:
            (r0, l0), (r1, l1) = below[-1], above[0]
            slope = min(MAX_SLOPE, max(MIN_SLOPE, math.log(l1 / l0) / math.log(r1 / r0)))
            through = r0 * (limit / l0) ** (1 / slope)
            if l0 > limit / LOSS_FLOOR:
                return through
            steep = r1 * (limit / l1) ** (1 / max(slope, self.slope))
            return math.sqrt(through * steep)
        side = below if below else above
        slope = self.slope
        if len(side) >= 2:
            (r0, l0), (r1, l1) = side[-2:] if below else side[:2]
            # Two losses closer than NEAR in rate differ mostly by noise.
            if l1 > l0 and l0 > limit / LOSS_FLOOR and r1 / r0 >= NEAR:
                slope = min(MAX_SLOPE, max(MIN_SLOPE, math.log(l1 / l0) / math.log(r1 / r0)))
        rate, loss = side[-1] if below else side[0]
        return rate * (limit / loss) ** (1 / slope)

    def band_top(self) -> float:
        """The busiest rate that passes both rules, with a rate at most `PRECISION`
        busier that fails one. Each candidate is placed where the rules are expected to
        bind, inside what is measured already, and judged on the binding rule only; once
        the bracket is closed its low end is judged on the other rule too."""
        passed: list[float] = []  # candidates the binding rule passed, rising
        moved: list[bool] = []  # which end each candidate moved: True for the low one
        low: float | None = None
        high: float | None = None
        out = 1 + PRECISION  # the least step out of a one-sided bracket, squared each time
        while True:
            if low is not None and high is not None and high / low <= 1 + PRECISION:
                if all(self.carries(at, floor) for at, floor in self._checks(low)):
                    return low
                high = low
                passed.remove(high)
                low = max((rate for rate in passed if rate < high), default=None)
                continue
            guess = min(self._steady_crossing(), self._band_crossing() / self.band)
            if low is not None and high is not None:
                if high / low <= (1 + PRECISION) ** 2:
                    rate = low * (1 + PRECISION)  # closes the bracket either way
                else:
                    if len(moved) >= 2 and moved[-1] == moved[-2]:
                        # The same end moved twice: the power law misplaces the floor
                        # (the loss is not one power across the bracket), so halve it.
                        guess = math.sqrt(low * high)
                    rate = min(high / (1 + PRECISION), max(low * (1 + PRECISION), guess))
            elif low is not None:
                rate = max(guess, low * out)
                out *= out
            elif high is not None:
                rate = min(guess, high / out)
                out *= out
            else:
                rate = guess
            if rate <= IDLE_RATE:
                return IDLE_RATE
            if rate > MAX_RATE:
                return MAX_RATE
            moved.append(self.carries(*self._checks(rate)[0]))
            if moved[-1]:
                low = rate
                passed = sorted([*passed, rate])
            else:
                high = rate

    def result(self, best_rate: float) -> Calibration:
        best = self.at(best_rate)
        expected = self.at(best_rate / self.band, EXPECTED_REQUESTS)
        self.at(best_rate * self.band)  # measured already when the band rule binds
        # The search measured only near the top; the curve also needs the light loads,
        # whose in-flight counts settle within a short run.
        light = {best_rate * fraction: self.at(best_rate * fraction, requests)
                 for fraction, requests in CURVE_POINTS}
        light[best_rate / self.band] = expected
        target = max(1.0, best.in_flight / self.band)
        mean_prompt = sum(prompt for prompt, _ in self.lengths) / len(self.lengths)
        return Calibration(
            target,
            best_rate,
            expected.ttft_p95,
            load_curve(light | self.seen, up_to=best_rate * self.band),
            prompt_tokens_rate=best_rate * mean_prompt,
        )


def calibrate_by_bisection(
    perf: StepModel,
    lengths: Sequence[tuple[int, int]],
    *,
    slo: Slo,
    goal: float = 0.99,
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = 0,
) -> Calibration:
    """The reference `calibrate` is measured against: doubling, then `ROUNDS` bisection
    steps, every probe a full steady state (about four times the work)."""
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


def saturation_rate(perf: StepModel, lengths: Sequence[tuple[int, int]]) -> float:
    """Requests per second one replica completes with its batch full (step-model figures,
    no queueing): where the search starts, since the band top lies a little below it."""
    mean_prompt = sum(p for p, _ in lengths) / len(lengths)
    mean_output = sum(o for _, o in lengths) / len(lengths)
    context = mean_prompt + mean_output / 2
    batch = max(1, min(perf.max_num_seqs,
                       int(perf.kv_capacity_tokens // max(1.0, mean_prompt + mean_output))))
    kv = int(batch * context)
    decode = perf.step_seconds(prefill_tokens=0, decode_seqs=batch, kv_tokens=kv)
    chunk = max(1, perf.max_num_batched_tokens - batch)
    with_prefill = perf.step_seconds(prefill_tokens=chunk, decode_seqs=batch, kv_tokens=kv)
    per_prompt_token = max(0.0, with_prefill - decode) / chunk
    seconds_per_request = mean_output * decode / batch + mean_prompt * per_prompt_token
    return 1.0 / seconds_per_request if seconds_per_request > 0 else 1e4


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
