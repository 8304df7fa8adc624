"""One probe of the calibration: a small fleet of the engine model at one arrival rate.

The same steps as `calibrate.steady_state` (fleet of `ReplicaEngine`s, least-in-flight
balancing, replicas advanced only when one is due), down to the floating-point operations,
so every figure it returns is the reference's own; `tests/unit/sim/test_probe.py` holds
the two to equal results. What makes it about twice as cheap is what the calibration does
not need: requests are indexes into flat lists instead of `Request` and
`CompletedRequest` objects, there are no metrics, busy time or cold starts, fewer calls
per step, the decode step times `next_change` computes are kept for the decode run that
follows, and the random draws are made once per calibration instead of once per probe.

And a probe can stop early: given the lowest attainment a verdict accepts, it stops as
soon as the requests already missed make that floor unreachable (an exact verdict, not a
guess): most of the sample for a rate well past the band top, little just past it. A
request counts as missed as soon as that is certain: at its first token when that came
too late, and while it still queues once it has waited longer than the TTFT objective.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from lmscale.sim.engine import StepModel, _steps_to_reach

# How many arrivals pass between checks of the early-stop floor.
CHECK_EVERY = 64


@dataclass(frozen=True)
class Draws:
    """The random draws of one sample: unit-rate gaps and token lengths per request.

    `calibrate._draws` scales `expovariate(rate)` draws; `expovariate(1.0) / rate` is the
    same float, so drawing once serves every rate.
    """

    gaps: tuple[float, ...]
    prompts: tuple[int, ...]
    outputs: tuple[int, ...]

    @classmethod
    def make(cls, lengths: Sequence[tuple[int, int]], *, requests: int, seed: int) -> Draws:
        rng = random.Random(seed)
        gaps, prompts, outputs = [], [], []
        count = len(lengths)
        for _ in range(requests):
            gaps.append(rng.expovariate(1.0))
            prompt, output = lengths[rng.randrange(count)]
            prompts.append(prompt)
            outputs.append(output)
        return cls(tuple(gaps), tuple(prompts), tuple(outputs))

    def arrivals(self, total_rate: float, requests: int) -> list[float]:
        """Arrival times at `total_rate`, summed in the order `_draws` sums them."""
        times, now = [], 0.0
        for gap in self.gaps[:requests]:
            now += gap / total_rate
            times.append(now)
        return times


@dataclass(frozen=True)
class Outcome:
    """A probe's figures (`calibrate.SteadyState`'s), or only its verdict if it stopped."""

    # When `stopped`, below the floor for certain: estimated from the steady requests
    # finished so far.
    attainment: float
    in_flight: float  # nan when `stopped`
    ttft_p95: float  # nan when `stopped`
    stopped: bool = False


class _Sample:
    """What one probe's replicas share: the requests and the times they reach."""

    __slots__ = ("prompts", "outputs", "arrivals", "first_token", "finished", "counts",
                 "skip", "ttft_limit", "tpot_limit", "missed", "steady_started")

    def __init__(self, draws: Draws, arrivals: list[float], *, replicas: int,
                 ttft_limit: float, tpot_limit: float) -> None:
        requests = len(arrivals)
        self.prompts, self.outputs, self.arrivals = draws.prompts, draws.outputs, arrivals
        self.first_token = [0.0] * requests
        self.finished = [0.0] * requests
        self.counts = [0] * replicas  # in flight per replica, what the balancer compares
        self.skip = requests // 10  # the warm-up tenth, as `steady_state` skips it
        self.ttft_limit, self.tpot_limit = ttft_limit, tpot_limit
        # Steady requests known to miss an objective so far: TTFT at the first token,
        # TPOT at the last.
        self.missed = 0
        self.steady_started = 0  # steady requests past their first token so far


class _Replica:
    """`ReplicaEngine` with chunked prefill, ready at time 0, for `_Sample`'s requests."""

    __slots__ = ("sample", "index", "step", "capacity", "max_seqs", "budget", "clock",
                 "next_change", "waiting", "prefilling", "decoding", "decode_steps", "serial",
                 "kv_decoding", "kv_prefilling", "reserved", "decode_times")

    def __init__(self, perf: StepModel, sample: _Sample, index: int) -> None:
        self.sample, self.index = sample, index
        self.step = perf.step_seconds
        self.capacity = max(1, perf.kv_capacity_tokens)
        self.max_seqs = max(1, perf.max_num_seqs)
        self.budget = max(1, perf.max_num_batched_tokens)
        self.clock = 0.0
        self.next_change = math.inf
        self.waiting: deque[int] = deque()
        self.prefilling: deque[list[int]] = deque()  # [request, prompt tokens prefilled]
        self.decoding: list[tuple[int, int, int]] = []  # (finish step, tie-break, request)
        self.decode_steps = self.serial = 0
        self.kv_decoding = self.kv_prefilling = self.reserved = 0
        # (first, last) decode step times `_next_change` computed, until the state moves.
        self.decode_times: tuple[float, float] | None = None

    def submit(self, request: int, now: float) -> None:
        if now > self.clock:
            self.run(now)
        self.waiting.append(request)
        self.sample.counts[self.index] += 1
        if self.clock < now:
            self.clock = now
        self.next_change = self.clock

    def run(self, until: float) -> None:
        """`ReplicaEngine._run`: every step that starts before `until`."""
        while self.clock < until:
            if self.waiting:
                self._admit()
            if self.prefilling:
                self._prefill_step()
            elif self.decoding:
                self._decode_run(until)
            else:
                self.clock = until
                break
        self.next_change = self._next_change()

    def _admit(self) -> None:
        sample, waiting, prefilling = self.sample, self.waiting, self.prefilling
        while waiting:
            if len(prefilling) + len(self.decoding) >= self.max_seqs:
                return
            request = waiting[0]
            need = min(sample.prompts[request] + sample.outputs[request], self.capacity)
            if self.reserved + need > self.capacity:
                return
            waiting.popleft()
            self.reserved += need
            prefilling.append([request, 0])

    def _prefill_step(self) -> None:
        decoding = len(self.decoding)
        budget = self.budget - decoding
        if budget <= 0:
            self._decode_run(self.clock + 1e-12)
            return
        prompts = self.sample.prompts
        prefilling = self.prefilling
        seq = prefilling[0]
        take = prompts[seq[0]] - seq[1]
        if take >= budget or len(prefilling) == 1:  # the common case: one prompt's chunk
            take = min(take, budget)
            chunks = [(seq, take)]
            tokens, prefix = take, seq[1]
        else:
            chunks, tokens, prefix = [], 0, 0
            for seq in prefilling:
                take = min(prompts[seq[0]] - seq[1], budget - tokens)
                if take <= 0:
                    break
                chunks.append((seq, take))
                prefix += seq[1]
                tokens += take
                if tokens >= budget:
                    break
        dt = self.step(prefill_tokens=tokens, decode_seqs=decoding,
                       kv_tokens=self.kv_decoding + prefix)
        self._commit(dt, 1 if decoding else 0, decoding)
        for seq, take in chunks:
            seq[1] += take
            self.kv_prefilling += take
            if seq[1] >= prompts[seq[0]]:
                prefilling.popleft()
                self._first_token(seq[0])

    def _decode_times(self, n: int, remaining: int) -> tuple[float, float]:
        """The first and last of the decode steps up to the next completion."""
        times = self.decode_times
        if times is None:
            kv = self.kv_decoding
            step = self.step
            times = self.decode_times = (
                step(prefill_tokens=0, decode_seqs=n, kv_tokens=kv),
                step(prefill_tokens=0, decode_seqs=n, kv_tokens=kv + n * (remaining - 1)))
        return times

    def _decode_run(self, until: float) -> None:
        n = len(self.decoding)
        remaining = self.decoding[0][0] - self.decode_steps
        first, last = self._decode_times(n, remaining)
        if remaining > 1:
            slope = (last - first) / (remaining - 1)
            steps = min(remaining, _steps_to_reach(until - self.clock, first, slope))
            self._commit(steps * first + slope * steps * (steps - 1) / 2, steps, n)
        else:
            steps = min(remaining, _steps_to_reach(until - self.clock, first, 0.0))
            self._commit(steps * first, steps, n)  # what adding 0.0 * ... leaves

    def _commit(self, dt: float, decode_steps: int, decoding: int) -> None:
        """Move the clock past finished steps and retire the sequences that completed."""
        clock = self.clock = self.clock + dt
        done = self.decode_steps = self.decode_steps + decode_steps
        self.kv_decoding += decode_steps * decoding
        self.decode_times = None
        heap = self.decoding
        if not heap or heap[0][0] > done:
            return
        sample = self.sample
        prompts, outputs = sample.prompts, sample.outputs
        while heap and heap[0][0] <= done:
            request = heapq.heappop(heap)[2]
            prompt, output = prompts[request], outputs[request]
            self.kv_decoding -= prompt + output - 1
            self.reserved -= min(prompt + output, self.capacity)
            sample.counts[self.index] -= 1
            sample.finished[request] = clock
            if request >= sample.skip:
                first = sample.first_token[request]
                if (first - sample.arrivals[request] <= sample.ttft_limit  # else counted
                        and (clock - first) / (output - 1) > sample.tpot_limit):
                    sample.missed += 1

    def _first_token(self, request: int) -> None:
        sample = self.sample
        prompt, output = sample.prompts[request], sample.outputs[request]
        sample.first_token[request] = self.clock
        self.kv_prefilling -= prompt
        if output <= 1:
            self._finish_alone(request)
            return
        if request >= sample.skip:
            sample.steady_started += 1
            if self.clock - sample.arrivals[request] > sample.ttft_limit:
                sample.missed += 1
        self.kv_decoding += prompt
        self.decode_times = None
        self.serial += 1
        heapq.heappush(self.decoding, (self.decode_steps + output - 1, self.serial, request))

    def _finish_alone(self, request: int) -> None:
        """A one-token output: done at its first token, nothing cached to free."""
        sample = self.sample
        self.reserved -= min(sample.prompts[request] + sample.outputs[request], self.capacity)
        sample.counts[self.index] -= 1
        sample.finished[request] = self.clock
        if request >= sample.skip:
            sample.steady_started += 1
            if self.clock - sample.arrivals[request] > sample.ttft_limit:
                sample.missed += 1

    def _next_change(self) -> float:
        if self.waiting or self.prefilling:
            return self.clock
        if not self.decoding:
            return math.inf
        n = len(self.decoding)
        remaining = self.decoding[0][0] - self.decode_steps
        first, last = self._decode_times(n, remaining)
        return self.clock + remaining * (first + last) / 2


class Probe:
    """`calibrate.steady_state` at `rate` per replica on the first `requests` draws, run
    in stages: a probe stopped below one floor resumes where it stopped for a lower one."""

    def __init__(self, perf: StepModel, draws: Draws, *, rate: float,
                 ttft_limit: float | None, tpot_limit: float | None, replicas: int,
                 requests: int) -> None:
        self.rate = rate
        self.arrivals = draws.arrivals(rate * replicas, requests)
        self.sample = _Sample(draws, self.arrivals, replicas=replicas,
                              ttft_limit=math.inf if ttft_limit is None else ttft_limit,
                              tpot_limit=math.inf if tpot_limit is None else tpot_limit)
        self.fleet = [_Replica(perf, self.sample, index) for index in range(replicas)]
        self.submitted = 0
        self.late = 0  # `_late` at the last check, where it was counted
        self.soonest = math.inf
        self.outcome: Outcome | None = None

    def extend(self, upto: int, *, stop_below: float | None = None) -> bool:
        """Submit the arrivals before `upto`; False if stopped because the attainment can
        no longer reach `stop_below`."""
        sample, fleet, counts = self.sample, self.fleet, self.sample.counts
        steady = len(self.arrivals) - sample.skip
        soonest, arrivals = self.soonest, self.arrivals
        for serial in range(self.submitted, min(upto, len(arrivals))):
            now = arrivals[serial]
            if soonest <= now:
                soonest = math.inf
                for replica in fleet:
                    if replica.next_change <= now:
                        replica.run(now)
                    if replica.next_change < soonest:
                        soonest = replica.next_change
            replica = fleet[counts.index(min(counts))]
            replica.submit(serial, now)
            if replica.next_change < soonest:
                soonest = replica.next_change
            if (stop_below is not None and serial % CHECK_EVERY == 0
                    and self._below(steady, stop_below)):
                self.submitted, self.soonest = serial + 1, soonest
                return False
        self.submitted, self.soonest = min(upto, len(arrivals)), soonest
        return True

    def _below(self, steady: int, floor: float) -> bool:
        """Whether the attainment is below `floor` whatever happens next: the requests
        known to miss, then (when they could be enough) those `_late` for certain."""
        missed = self.sample.missed
        self.late = 0
        if (steady - missed) / steady < floor:
            return True
        queued = sum(len(replica.waiting) + len(replica.prefilling) for replica in self.fleet)
        if (steady - missed - queued) / steady >= floor:
            return False
        self.late = self._late()
        return (steady - missed - self.late) / steady < floor

    def _late(self) -> int:
        """Steady requests that will miss the TTFT objective whatever happens next: no
        first token yet, and already longer than the objective since they arrived at the
        replica's clock (the first token comes at a step's end, never before it). Each
        replica's queues are in arrival order, so the late ones come first."""
        sample = self.sample
        arrivals, skip, limit = sample.arrivals, sample.skip, sample.ttft_limit
        late = 0
        for replica in self.fleet:
            clock = replica.clock
            for request in itertools.chain((seq[0] for seq in replica.prefilling),
                                           replica.waiting):
                if clock - arrivals[request] <= limit:
                    break
                if request >= skip:
                    late += 1
        return late

    def finish(self, *, stop_below: float | None = None) -> Outcome:
        """The exact figures, or only the verdict once `stop_below` cannot be reached."""
        if self.outcome is None:
            sample = self.sample
            steady = len(self.arrivals) - sample.skip
            if not self.extend(len(self.arrivals), stop_below=stop_below):
                # Below the floor for sure; the share missed so far (finished, or late
                # for certain) says how far.
                missed = sample.missed + self.late
                return Outcome(1 - missed / max(1, sample.steady_started + self.late),
                               math.nan, math.nan, stopped=True)
            for replica in self.fleet:
                replica.run(math.inf)
            self.outcome = _outcome(sample, rate=self.rate, steady=steady)
        return self.outcome


def run(
    perf: StepModel,
    draws: Draws,
    *,
    rate: float,
    ttft_limit: float | None,
    tpot_limit: float | None,
    replicas: int,
    requests: int,
    stop_below: float | None = None,
) -> Outcome:
    """`calibrate.steady_state` at `rate` per replica on the first `requests` draws.

    With `stop_below`, stops once the attainment can no longer reach it.
    """
    return Probe(perf, draws, rate=rate, ttft_limit=ttft_limit, tpot_limit=tpot_limit,
                 replicas=replicas, requests=requests).finish(stop_below=stop_below)


def _outcome(sample: _Sample, *, rate: float, steady: int) -> Outcome:
    """`calibrate._state`'s figures, summed and sorted in the same order."""
    skip, arrivals = sample.skip, sample.arrivals
    mean_e2e = sum(finished - arrival for finished, arrival
                   in zip(sample.finished[skip:], arrivals[skip:], strict=True)) / steady
    ttft = sorted(first - arrival for first, arrival
                  in zip(sample.first_token[skip:], arrivals[skip:], strict=True))
    return Outcome((steady - sample.missed) / steady, rate * mean_e2e,
                   ttft[int(0.95 * (len(ttft) - 1))])


def solo(perf: StepModel, prompt: int, output: int) -> tuple[float, float]:
    """First-token and finish times of one request served alone from time 0: what
    `ReplicaEngine` gives it, from the same steps and floats as `_Replica`'s: the prompt in
    chunks of the step budget, then one decode run to the end."""
    step, budget = perf.step_seconds, max(1, perf.max_num_batched_tokens)
    clock, done = 0.0, 0
    while done < prompt:
        take = min(prompt - done, budget)
        clock = clock + step(prefill_tokens=take, decode_seqs=0, kv_tokens=done)
        done += take
    if output <= 1:
        return clock, clock
    remaining = output - 1
    first = step(prefill_tokens=0, decode_seqs=1, kv_tokens=prompt)
    if first <= 0 or prompt <= 0:  # runs of zero-time steps, or nothing to prefill
        return _solo_replica(perf, prompt, output)
    if remaining > 1:
        last = step(prefill_tokens=0, decode_seqs=1, kv_tokens=prompt + remaining - 1)
        slope = (last - first) / (remaining - 1)
        return clock, clock + (remaining * first + slope * remaining * (remaining - 1) / 2)
    return clock, clock + first


def _solo_replica(perf: StepModel, prompt: int, output: int) -> tuple[float, float]:
    """`solo` on a `_Replica` itself."""
    draws = Draws((0.0,), (prompt,), (output,))
    sample = _Sample(draws, [0.0], replicas=1, ttft_limit=math.inf, tpot_limit=math.inf)
    replica = _Replica(perf, sample, 0)
    replica.submit(0, 0.0)
    replica.run(math.inf)
    return sample.first_token[0], sample.finished[0]
