"""Latency at a load, and the load one replica carries within a latency objective.

Steady state of a continuous-batching engine with chunked prefill (vLLM's default scheduler:
decodes first, then prompt chunks fill the rest of the `max_num_batched_tokens` budget):
with `n` requests in flight, every step decodes one token for each of the `n` sequences and
prefills, on average, `n * P / O` prompt tokens (each request brings P prompt tokens per O
output tokens). So
- TPOT(n) is one such step, with caches of `P + O/2` tokens per sequence on average;
- TTFT(n) is the steps a new prompt needs at the chunk budget left after the decodes, plus the
  wait behind other prompts, taken as an M/D/1 queue (Pollaczek-Khinchine mean wait
  rho * S / (2(1 - rho)) for prefill service time S), plus half of the decode step in flight;
- throughput follows from Little's law: n / (TTFT + O * TPOT).

These are means. The objectives are 95th percentiles, so the estimates must stay within
`headroom` (0.8 by default: a heuristic until the simulator calibrates it) of them.
"""

from __future__ import annotations

import dataclasses
import math

from lmscale.planner import performance

DEFAULT_HEADROOM = 0.8


@dataclasses.dataclass(frozen=True)
class Latency:
    """Mean latencies and throughput of one replica with `concurrency` requests in flight."""

    concurrency: int
    ttft_s: float
    tpot_s: float
    requests_per_second: float

    @property
    def output_tokens_per_second(self) -> float:
        return self.concurrency / self.tpot_s if self.tpot_s > 0 else 0.0


def kv_limited_concurrency(
    perf: performance.ReplicaPerformance, *, mean_prompt_tokens: float, mean_output_tokens: float
) -> int:
    """Requests that fit at once: each needs its full prompt plus output in the cache."""
    per_request = max(1.0, mean_prompt_tokens + mean_output_tokens)
    return int(min(perf.max_num_seqs, perf.kv_capacity_tokens // per_request))


def latency_at(
    perf: performance.ReplicaPerformance,
    *,
    concurrency: int,
    mean_prompt_tokens: float,
    mean_output_tokens: float,
) -> Latency:
    """Mean TTFT, TPOT and throughput with `concurrency` requests in flight (see module doc).

    TTFT is infinite when prompts arrive faster than the chunk budget left by the decodes
    can prefill them.
    """
    n = max(1, concurrency)
    prompt, output = max(1.0, mean_prompt_tokens), max(1.0, mean_output_tokens)
    kv_tokens = int(n * (prompt + output / 2))
    prefill_per_step = int(n * prompt / output)
    tpot = perf.step_seconds(prefill_tokens=prefill_per_step, decode_seqs=n, kv_tokens=kv_tokens)

    budget = perf.max_num_batched_tokens - n
    if budget <= 0:
        return Latency(n, math.inf, tpot, 0.0)
    chunk = min(prompt, float(budget))
    steps = math.ceil(prompt / chunk - 1e-9)
    step = perf.step_seconds(prefill_tokens=round(chunk), decode_seqs=n, kv_tokens=kv_tokens)
    service = steps * step
    rate = n / (service + output * tpot)
    rho = rate * service
    if rho >= 1:
        return Latency(n, math.inf, tpot, 1 / service)
    wait = rho * service / (2 * (1 - rho))
    # A new request waits, on average, for half of the other sequences' step in flight.
    ttft = service + wait + (tpot / 2 if n > 1 else 0.0)
    return Latency(n, ttft, tpot, n / (ttft + output * tpot))


def _meets(latency: Latency, *, ttft_s: float, tpot_s: float, headroom: float) -> bool:
    return latency.ttft_s <= ttft_s * headroom and latency.tpot_s <= tpot_s * headroom


def target_concurrency(
    perf: performance.ReplicaPerformance,
    *,
    ttft_p95_s: float,
    tpot_p95_s: float,
    mean_prompt_tokens: float,
    mean_output_tokens: float,
    headroom: float = DEFAULT_HEADROOM,
) -> float:
    """In-flight requests (running + waiting) one replica carries while meeting the SLO.

    The autoscaler's target per replica. Never below 1: when even one request misses the
    objective (`slo_problem` says why), one request per replica is the best any count of
    replicas can do.
    """
    limit = kv_limited_concurrency(
        perf, mean_prompt_tokens=mean_prompt_tokens, mean_output_tokens=mean_output_tokens
    )
    low, high = 1, max(1, limit)

    def ok(n: int) -> bool:
        latency = latency_at(perf, concurrency=n, mean_prompt_tokens=mean_prompt_tokens,
                             mean_output_tokens=mean_output_tokens)
        return _meets(latency, ttft_s=ttft_p95_s, tpot_s=tpot_p95_s, headroom=headroom)

    if not ok(low):
        return 1.0
    # Latencies grow with load, so the feasible counts are a prefix: binary search its end.
    while low < high:
        middle = (low + high + 1) // 2
        if ok(middle):
            low = middle
        else:
            high = middle - 1
    return float(low)


def slo_problem(
    perf: performance.ReplicaPerformance,
    *,
    ttft_p95_s: float,
    tpot_p95_s: float,
    mean_prompt_tokens: float,
    mean_output_tokens: float,
    headroom: float = DEFAULT_HEADROOM,
) -> str | None:
    """Why a replica misses the SLO even with one request in flight, or None."""
    if kv_limited_concurrency(perf, mean_prompt_tokens=mean_prompt_tokens,
                              mean_output_tokens=mean_output_tokens) < 1:
        return (f"one request of {mean_prompt_tokens:.0f}+{mean_output_tokens:.0f} tokens "
                f"needs more than the {perf.kv_capacity_tokens}-token KV cache")
    alone = latency_at(perf, concurrency=1, mean_prompt_tokens=mean_prompt_tokens,
                       mean_output_tokens=mean_output_tokens)
    if alone.tpot_s > tpot_p95_s * headroom:
        return (f"TPOT is {alone.tpot_s * 1e3:.1f} ms even for one request, over "
                f"{headroom:.0%} of the {tpot_p95_s * 1e3:.0f} ms objective")
    if alone.ttft_s > ttft_p95_s * headroom:
        return (f"TTFT is {alone.ttft_s * 1e3:.0f} ms even for one request, over "
                f"{headroom:.0%} of the {ttft_p95_s * 1e3:.0f} ms objective")
    return None


def replicas_for_load(
    perf: performance.ReplicaPerformance,
    *,
    rate_rps: float,
    ttft_p95_s: float,
    tpot_p95_s: float,
    mean_prompt_tokens: float,
    mean_output_tokens: float,
    headroom: float = DEFAULT_HEADROOM,
) -> int:
    """Replicas that serve `rate_rps` requests/s within the SLO (Little's law per replica)."""
    if rate_rps <= 0:
        return 0
    n = int(target_concurrency(
        perf, ttft_p95_s=ttft_p95_s, tpot_p95_s=tpot_p95_s, mean_prompt_tokens=mean_prompt_tokens,
        mean_output_tokens=mean_output_tokens, headroom=headroom,
    ))
    latency = latency_at(perf, concurrency=n, mean_prompt_tokens=mean_prompt_tokens,
                         mean_output_tokens=mean_output_tokens)
    if latency.requests_per_second <= 0:
        raise ValueError("a replica serves no requests at this token mix")
    return max(1, math.ceil(rate_rps / latency.requests_per_second - 1e-9))
