"""One replica on the real clock: the shared engine model, driven by a thread, and its counters.

The engine model (`lmscale.sim.engine.ReplicaEngine`, the same one the simulator and
`lmscale sim serve` use) runs on virtual seconds; here virtual time is real time times
`speed`, so tests can play a replica faster than life. A driver thread advances the model to
"now" whenever something can change, and wakes the request handlers waiting for their first
token or their completion. Token pacing between the first token and the end follows the
step model's decode step for the current batch.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lmscale.planner.performance import ReplicaPerformance
from lmscale.sim.engine import ReplicaEngine, _Seq
from lmscale.sim.request import CompletedRequest, Request
from lmscale.sim.serve.fleet import Histogram

# A replica's own histogram bounds where the engines' exporters have no TTFT (TGI) differ;
# see lmscale.sim.standin.metrics for which is exported under which name.
TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0,
               60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)  # fmt: skip


class _Engine(ReplicaEngine):
    """The engine model, also reporting each request's first token as it happens."""

    def __init__(self, perf: ReplicaPerformance, on_first: Callable[[Request, float], None]):
        super().__init__(perf)
        self._on_first = on_first

    def _first_token(self, seq: _Seq) -> None:
        super()._first_token(seq)
        self._on_first(seq.request, self.clock)

    @property
    def cached_tokens(self) -> int:
        return self._kv_decoding


@dataclass
class Ticket:
    """One request in flight, as its handler follows it (virtual seconds)."""

    request: Request
    first_token_at: float | None = None
    done: CompletedRequest | None = None


@dataclass
class Counters:
    """What the engine's /metrics counts since start."""

    prompt_tokens: int = 0  # when the prefill finished (vLLM, TGI's input length at arrival)
    prompt_tokens_at_end: int = 0  # when the request finished (SGLang counts here)
    generation_tokens: int = 0
    finished: int = 0
    ttft: Histogram = field(default_factory=lambda: Histogram(()))
    tpot: Histogram = field(default_factory=lambda: Histogram(TPOT_BUCKETS))
    e2e: Histogram = field(default_factory=lambda: Histogram(E2E_BUCKETS))
    queue: Histogram = field(default_factory=lambda: Histogram(()))
    prefill: Histogram = field(default_factory=lambda: Histogram(()))
    input_length: Histogram = field(default_factory=lambda: Histogram(()))


@dataclass(frozen=True)
class Gauges:
    waiting: int
    running: int
    kv_cache_usage: float


class Replica:
    """The engine model on the real clock, shared by every request handler of the server."""

    def __init__(
        self,
        perf: ReplicaPerformance,
        *,
        speed: float = 1.0,
        ttft_buckets: tuple[float, ...] = (),
        duration_buckets: tuple[float, ...] = (),
        length_buckets: tuple[float, ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.perf = perf
        self.speed = speed
        self._clock = clock
        self._t0 = clock()
        self._cond = threading.Condition()
        self._tickets: dict[int, Ticket] = {}
        self._engine = _Engine(perf, self._first)
        self.counters = Counters(
            ttft=Histogram(ttft_buckets),
            queue=Histogram(duration_buckets),
            prefill=Histogram(duration_buckets),
            input_length=Histogram(length_buckets),
        )
        self._stopped = False
        self._thread = threading.Thread(target=self._drive, name="replica", daemon=True)
        self._thread.start()

    # ----------------------------------------------------------------- for handlers

    def now(self) -> float:
        """Virtual seconds since start."""
        return (self._clock() - self._t0) * self.speed

    def submit(self, prompt_tokens: int, output_tokens: int) -> Ticket:
        with self._cond:
            now = self.now()
            request = Request(now, max(1, prompt_tokens), max(1, output_tokens))
            ticket = Ticket(request)
            self._tickets[id(request)] = ticket
            self._finish(self._engine.submit(request, now))
            self.counters.input_length.observe(request.prompt_tokens)
            self._cond.notify_all()
            return ticket

    def wait_first_token(self, ticket: Ticket, timeout: float | None = None) -> float:
        """Block until the first token's virtual time is known and reached; return it."""
        with self._cond:
            self._cond.wait_for(lambda: ticket.first_token_at is not None, timeout)
        assert ticket.first_token_at is not None
        self.sleep_until(ticket.first_token_at)
        return ticket.first_token_at

    def wait_done(self, ticket: Ticket) -> CompletedRequest:
        with self._cond:
            self._cond.wait_for(lambda: ticket.done is not None)
        assert ticket.done is not None
        self.sleep_until(ticket.done.finished_s)
        return ticket.done

    def decode_step(self) -> float:
        """Virtual seconds of one decode step of the current batch."""
        with self._cond:
            seqs = max(1, self._engine.running)
            return self.perf.step_seconds(
                prefill_tokens=0, decode_seqs=seqs, kv_tokens=self._engine.cached_tokens
            )

    def sleep_until(self, virtual: float) -> None:
        wait = (virtual - self.now()) / self.speed
        if wait > 0:
            time.sleep(wait)

    @property
    def in_flight(self) -> int:
        with self._cond:
            return len(self._tickets)

    def gauges(self) -> Gauges:
        with self._cond:
            self._finish(self._engine.advance(self.now()))  # a scrape may meet completions
            self._cond.notify_all()
            engine = self._engine
            return Gauges(
                waiting=engine.waiting,
                running=engine.running,
                kv_cache_usage=min(
                    1.0, engine.cached_tokens / max(1, self.perf.kv_capacity_tokens)
                ),
            )

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    # ----------------------------------------------------------------- the driver

    def _drive(self) -> None:
        with self._cond:
            while not self._stopped:
                now = self.now()
                self._finish(self._engine.advance(now))
                self._engine.drain_ttft()  # the counters keep their own histogram
                self._cond.notify_all()
                wake = self._engine.next_change
                if not self._tickets or not math.isfinite(wake):
                    timeout = 0.5
                else:
                    timeout = min(0.05, max(0.001, (wake - now) / self.speed))
                self._cond.wait(timeout)

    def _first(self, request: Request, at: float) -> None:
        ticket = self._tickets.get(id(request))
        if ticket is not None:
            ticket.first_token_at = at
        c = self.counters
        c.prompt_tokens += request.prompt_tokens
        c.ttft.observe(at - request.arrival_s)

    def _finish(self, done: list[CompletedRequest]) -> None:
        c = self.counters
        for item in done:
            ticket = self._tickets.pop(id(item.request), None)
            if ticket is not None:
                ticket.done = item
            c.finished += 1
            c.generation_tokens += item.request.output_tokens
            c.prompt_tokens_at_end += item.request.prompt_tokens
            c.e2e.observe(item.e2e_seconds)
            c.queue.observe(item.queue_seconds)
            c.prefill.observe(item.first_token_s - item.admitted_s)
            if item.request.output_tokens > 1:
                c.tpot.observe(item.tpot_seconds)
