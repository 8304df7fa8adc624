"""The replica engine model: one model server with continuous batching, on a virtual clock.

The one engine model of the codebase: the offline simulator and the live metrics
exporter (`lmscale sim serve`) both drive it with `submit`, `advance` and `snapshot`.

How a step works (vLLM's scheduler, simplified):
- at each step boundary, waiting requests are admitted first come, first served while the
  batch has a free sequence slot and the KV cache can reserve the request's prompt and
  output tokens; otherwise they wait (so a full cache makes requests queue);
- a step decodes one token for every sequence past its prefill and spends the rest of the
  `max_num_batched_tokens` budget on prompt tokens: in chunks (chunked prefill) or whole
  prompts; its duration comes from the planner's `step_seconds`;
- a prompt's last prefill step emits the first token; `output_tokens - 1` decode steps later
  the request completes and frees its cache.

Speed: between events nothing changes but the caches' length, so runs of identical decode
steps are taken in one jump, their total time from the step model's (piecewise) linearity
in cached tokens. Work is proportional to requests, not to steps or milliseconds.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from lmscale.sim.request import CompletedRequest, Request


class StepModel(Protocol):
    """What the engine needs of `planner.performance.ReplicaPerformance`."""

    @property
    def kv_capacity_tokens(self) -> int: ...

    @property
    def max_num_seqs(self) -> int: ...

    @property
    def max_num_batched_tokens(self) -> int: ...

    def step_seconds(self, *, prefill_tokens: int, decode_seqs: int, kv_tokens: int) -> float: ...


@dataclass(frozen=True)
class EngineMetrics:
    """What a model server and DCGM would export at one scrape.

    `gpu_busy` is DCGM's utilisation: the fraction of time since the previous snapshot in
    which any kernel ran, so one request keeps it near 1. `prompt_tokens` counts the prompt
    tokens whose prefill finished since the previous snapshot (the engine's
    `prompt_tokens_total` counter grows by this much); `completed` counts the requests
    that finished since then (its `request_success_total` counter).
    """

    time: float
    waiting: int
    running: int
    kv_cache_usage: float
    gpu_busy: float
    ttft_samples: tuple[float, ...] = field(default=(), repr=False)
    prompt_tokens: int = 0
    completed: int = 0


class _Seq:
    """Per-request engine state."""

    __slots__ = ("request", "admitted", "prefilled", "first_token", "reserved")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.admitted = 0.0
        self.prefilled = 0
        self.first_token = 0.0
        self.reserved = 0


class ReplicaEngine:
    """One replica: admit, batch, prefill and decode requests on a virtual clock.

    `ready_at` is when the replica finishes its cold start; requests submitted earlier
    wait until then. Time only moves forward: `advance(until)` runs every step that
    starts before `until`, so afterwards the engine's clock is the first step boundary
    at or after `until` (or `until` itself when idle).
    """

    def __init__(self, perf: StepModel, *, ready_at: float = 0.0, chunked_prefill: bool = True):
        self.perf = perf
        self.ready_at = ready_at
        self.chunked_prefill = chunked_prefill
        self.clock = ready_at
        self._capacity = max(1, perf.kv_capacity_tokens)
        self._max_seqs = max(1, perf.max_num_seqs)
        self._budget = max(1, perf.max_num_batched_tokens)
        self._step = perf.step_seconds
        self._waiting: deque[_Seq] = deque()
        self._prefilling: deque[_Seq] = deque()
        self._decoding: list[tuple[int, int, _Seq]] = []  # (finish step, tie-break, seq)
        self._decode_steps = 0
        self._serial = 0
        self._kv_decoding = 0  # tokens cached by sequences past their prefill
        self._kv_prefilling = 0  # tokens cached by sequences still prefilling
        self._reserved = 0
        self._busy = 0.0
        self._busy_at_snapshot = 0.0
        self._snapshot_at = ready_at
        self._ttft: list[float] = []
        self._prompt_tokens = 0
        self._completed = 0
        self._done: list[CompletedRequest] = []
        self.next_change = math.inf

    # ----------------------------------------------------------------- public API

    @property
    def in_flight(self) -> int:
        """Requests submitted and not finished: what a least-requests balancer counts."""
        return len(self._waiting) + len(self._prefilling) + len(self._decoding)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return len(self._prefilling) + len(self._decoding)

    @property
    def idle(self) -> bool:
        return not (self._waiting or self._prefilling or self._decoding)

    def submit(self, request: Request, now: float) -> list[CompletedRequest]:
        """Queue a request arriving at `now`; it joins the batch at the next step boundary.

        Returns requests that completed while catching up to `now`.
        """
        done = self.advance(now)
        self._waiting.append(_Seq(request))
        if self.clock < now:
            self.clock = max(now, self.ready_at)
        self.next_change = self.clock
        return done

    def advance(self, until: float) -> list[CompletedRequest]:
        """Run every step that starts before `until`; return the requests that completed."""
        if until > self.clock:
            self._run(until)
        done, self._done = self._done, []
        return done

    def snapshot(self, now: float) -> EngineMetrics:
        """Metrics as of `now` (call after `advance(now)`): gauges, busy fraction, TTFTs."""
        busy = self._busy
        if self.clock > now and not self.idle:
            busy -= self.clock - now  # the step in flight runs past `now`
        span = now - self._snapshot_at
        fraction = (busy - self._busy_at_snapshot) / span if span > 0 else 0.0
        self._busy_at_snapshot, self._snapshot_at = busy, now
        samples, self._ttft = tuple(self._ttft), []
        prompt_tokens, self._prompt_tokens = self._prompt_tokens, 0
        completed, self._completed = self._completed, 0
        return EngineMetrics(
            time=now,
            waiting=len(self._waiting),
            running=self.running,
            kv_cache_usage=min(1.0, (self._kv_decoding + self._kv_prefilling) / self._capacity),
            gpu_busy=min(1.0, max(0.0, fraction)),
            ttft_samples=samples,
            prompt_tokens=prompt_tokens,
            completed=completed,
        )

    def abandon(self) -> list[Request]:
        """Drop everything in flight (a pod killed at the end of its grace period)."""
        lost = [seq.request for seq in self._waiting]
        lost += [seq.request for seq in self._prefilling]
        lost += [seq.request for _, _, seq in self._decoding]
        self._waiting.clear()
        self._prefilling.clear()
        self._decoding.clear()
        self._kv_decoding = self._kv_prefilling = self._reserved = 0
        self.next_change = math.inf
        return lost

    def drain_ttft(self) -> list[float]:
        """TTFT samples since the last call, for callers that keep their own histogram."""
        samples, self._ttft = self._ttft, []
        return samples

    # ----------------------------------------------------------------- the step loop

    def _run(self, until: float) -> None:
        while self.clock < until:
            if self._waiting:
                self._admit()
            if self._prefilling:
                self._prefill_step()
            elif self._decoding:
                self._decode_run(until)
            else:
                self.clock = until  # idle: nothing to do until something arrives
                break
        self.next_change = self._next_change()

    def _admit(self) -> None:
        """First come, first served, while a sequence slot and cache room remain."""
        while self._waiting:
            if len(self._prefilling) + len(self._decoding) >= self._max_seqs:
                return
            seq = self._waiting[0]
            need = min(seq.request.prompt_tokens + seq.request.output_tokens, self._capacity)
            if self._reserved + need > self._capacity:
                return
            self._waiting.popleft()
            seq.admitted = self.clock
            seq.reserved = need
            self._reserved += need
            self._prefilling.append(seq)

    def _prefill_step(self) -> None:
        """One step: a decode token for each decoding sequence, prompt tokens for the rest."""
        decoding = len(self._decoding)
        budget = self._budget - decoding
        if budget <= 0:
            self._decode_run(self.clock + 1e-12)  # decodes fill the budget: decode-only step
            return
        chunks: list[tuple[_Seq, int]] = []
        tokens = prefix = 0
        for seq in self._prefilling:
            left = seq.request.prompt_tokens - seq.prefilled
            take = min(left, budget - tokens) if self.chunked_prefill else left
            if take <= 0 or (not self.chunked_prefill and chunks and tokens + take > budget):
                break
            chunks.append((seq, take))
            prefix += seq.prefilled
            tokens += take
            if tokens >= budget:
                break
        dt = self._step(
            prefill_tokens=tokens, decode_seqs=decoding, kv_tokens=self._kv_decoding + prefix
        )
        self._commit(dt, 1 if decoding else 0, decoding)
        for seq, take in chunks:
            seq.prefilled += take
            self._kv_prefilling += take
            if seq.prefilled >= seq.request.prompt_tokens:
                self._prefilling.popleft()  # chunks are taken in queue order
                self._first_token(seq)

    def _decode_run(self, until: float) -> None:
        """Identical decode steps up to the next completion or past `until`, in one jump."""
        n = len(self._decoding)
        remaining = self._decoding[0][0] - self._decode_steps
        first = self._step(prefill_tokens=0, decode_seqs=n, kv_tokens=self._kv_decoding)
        slope = 0.0
        if remaining > 1:
            last = self._step(
                prefill_tokens=0, decode_seqs=n, kv_tokens=self._kv_decoding + n * (remaining - 1)
            )
            slope = (last - first) / (remaining - 1)
        steps = min(remaining, _steps_to_reach(until - self.clock, first, slope))
        self._commit(steps * first + slope * steps * (steps - 1) / 2, steps, n)

    def _commit(self, dt: float, decode_steps: int, decoding: int) -> None:
        """Move the clock past finished steps and retire the sequences that completed."""
        self.clock += dt
        self._busy += dt
        self._decode_steps += decode_steps
        self._kv_decoding += decode_steps * decoding
        heap = self._decoding
        while heap and heap[0][0] <= self._decode_steps:
            _, _, seq = heapq.heappop(heap)
            self._finish(seq, cached=seq.request.prompt_tokens + seq.request.output_tokens - 1)

    def _first_token(self, seq: _Seq) -> None:
        request = seq.request
        seq.first_token = self.clock
        self._ttft.append(self.clock - request.arrival_s)
        self._prompt_tokens += request.prompt_tokens
        self._kv_prefilling -= request.prompt_tokens
        if request.output_tokens <= 1:
            self._finish(seq, cached=0)
            return
        self._kv_decoding += request.prompt_tokens
        self._serial += 1
        finish = self._decode_steps + request.output_tokens - 1
        heapq.heappush(self._decoding, (finish, self._serial, seq))

    def _finish(self, seq: _Seq, *, cached: int) -> None:
        self._kv_decoding -= cached
        self._reserved -= seq.reserved
        self._completed += 1
        self._done.append(CompletedRequest(seq.request, seq.admitted, seq.first_token, self.clock))

    def _next_change(self) -> float:
        """Earliest time the in-flight count can change without new input."""
        if self._waiting or self._prefilling:
            return self.clock
        if not self._decoding:
            return math.inf
        n = len(self._decoding)
        remaining = self._decoding[0][0] - self._decode_steps
        first = self._step(prefill_tokens=0, decode_seqs=n, kv_tokens=self._kv_decoding)
        last = self._step(
            prefill_tokens=0, decode_seqs=n, kv_tokens=self._kv_decoding + n * (remaining - 1)
        )
        return self.clock + remaining * (first + last) / 2


def _steps_to_reach(span: float, first: float, slope: float) -> int:
    """Fewest steps (durations `first + slope * i`) whose total reaches `span`."""
    if span <= first or first <= 0:
        return 1
    if not math.isfinite(span):
        return 1 << 62
    if slope <= 1e-15:
        return max(1, math.ceil(span / first - 1e-12))
    # k * first + slope * k (k - 1) / 2 >= span, solved for k.
    a, b = slope / 2, first - slope / 2
    k = math.ceil((-b + math.sqrt(b * b + 4 * a * span)) / (2 * a) - 1e-9)
    return max(1, k)
