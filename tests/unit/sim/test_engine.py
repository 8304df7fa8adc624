"""The replica engine model against hand-computed timings."""

from __future__ import annotations

import math
import random

import pytest

from lmscale.sim.engine import ReplicaEngine
from lmscale.sim.request import Request

from .fakes import LinearStep


def run(engine: ReplicaEngine, requests: list[Request]) -> dict[Request, tuple[float, float]]:
    """Submit in arrival order and finish; (first token, finish) per request."""
    done = []
    for request in requests:
        done += engine.submit(request, request.arrival_s)
    done += engine.advance(math.inf)
    return {c.request: (c.first_token_s, c.finished_s) for c in done}


@pytest.mark.parametrize(
    ("arrival", "prompt", "output", "first", "finish"),
    [
        # Prefill of 100 tokens: 0.01 + 0.1 = 0.11 s; each decode step 0.01 s.
        pytest.param(0.0, 100, 1, 0.11, 0.11, id="one-token-output"),
        pytest.param(0.0, 100, 11, 0.11, 0.21, id="ten-decode-steps"),
        pytest.param(5.0, 100, 11, 5.11, 5.21, id="arrives-later"),
        pytest.param(0.0, 1000, 2, 1.01, 1.02, id="long-prompt"),
    ],
)
def test_one_request_alone_ttft_is_prefill(
    arrival: float, prompt: int, output: int, first: float, finish: float
) -> None:
    request = Request(arrival, prompt, output)
    times = run(ReplicaEngine(LinearStep()), [request])
    assert times[request] == pytest.approx((first, finish))


def test_ttft_is_queueing_plus_prefill_behind_a_full_batch() -> None:
    """With one sequence slot the second request waits for the first to finish."""
    engine = ReplicaEngine(LinearStep(max_num_seqs=1))
    first = Request(0.0, 100, 11)  # prefill 0.11, ten decodes: done at 0.21
    second = Request(0.05, 100, 1)  # admitted at 0.21, prefill 0.11
    times = run(engine, [first, second])
    assert times[second][0] == pytest.approx(0.21 + 0.11)
    assert times[second][0] - second.arrival_s == pytest.approx((0.21 - 0.05) + 0.11)


def test_full_kv_cache_makes_requests_wait() -> None:
    """A 100-token cache holds the first request (80 tokens); the second (40) waits."""
    engine = ReplicaEngine(LinearStep(kv_capacity_tokens=100))
    big = Request(0.0, 60, 20)  # prefill 0.07, 19 decodes: done at 0.26
    small = Request(0.0, 30, 10)
    times = run(engine, [big, small])
    assert times[big] == pytest.approx((0.07, 0.26))
    assert times[small][0] == pytest.approx(0.26 + 0.04)


def test_room_in_the_cache_lets_requests_share_steps() -> None:
    engine = ReplicaEngine(LinearStep(kv_capacity_tokens=1000))
    a, b = Request(0.0, 60, 20), Request(0.0, 30, 10)
    times = run(engine, [a, b])
    # Both prefill in one step of 90 tokens, then decode together.
    assert times[a][0] == times[b][0] == pytest.approx(0.1)


def test_cold_start_delays_service() -> None:
    engine = ReplicaEngine(LinearStep(), ready_at=120.0)
    request = Request(3.0, 100, 1)
    times = run(engine, [request])
    assert times[request][0] == pytest.approx(120.11)


@pytest.mark.parametrize(
    ("chunked", "first"),
    [
        # 300 tokens at a 128-token budget: steps of 128, 128 and 44 tokens.
        pytest.param(True, (0.01 + 0.128) * 2 + 0.01 + 0.044, id="chunked"),
        pytest.param(False, 0.01 + 0.3, id="whole-prompt"),
    ],
)
def test_chunked_prefill(chunked: bool, first: float) -> None:
    engine = ReplicaEngine(LinearStep(max_num_batched_tokens=128), chunked_prefill=chunked)
    request = Request(0.0, 300, 1)
    assert run(engine, [request])[request][0] == pytest.approx(first)


def test_prompt_joins_decodes_at_a_step_boundary() -> None:
    """A request arriving mid-step waits for the boundary, then shares the step."""
    engine = ReplicaEngine(LinearStep(per_sequence=0.0))
    long = Request(0.0, 10, 100)  # prefill 0.02; decode steps of 0.01 from 0.02
    late = Request(0.025, 10, 1)  # boundary at 0.03; that step: 10 prompt + 1 decode
    times = run(engine, [long, late])
    assert times[late][0] == pytest.approx(0.03 + 0.01 + 0.01)


def naive(perf: LinearStep, requests: list[Request]) -> dict[Request, float]:
    """Step-by-step reference: one step per loop, no jumps (finish times)."""
    pending = sorted(requests, key=lambda r: r.arrival_s)
    clock, waiting, decoding, finish = 0.0, [], [], {}
    kv = 0
    while pending or waiting or decoding:
        while pending and pending[0].arrival_s <= clock:
            waiting.append(pending.pop(0))
        if not waiting and not decoding:
            clock = pending[0].arrival_s
            continue
        prefill = waiting[:]
        waiting.clear()
        tokens = sum(r.prompt_tokens for r in prefill)
        clock += perf.step_seconds(prefill_tokens=tokens, decode_seqs=len(decoding), kv_tokens=kv)
        kv += len(decoding)
        for item in decoding:
            item[1] -= 1
        for item in [d for d in decoding if d[1] <= 0]:
            decoding.remove(item)
            finish[item[0]] = clock
            kv -= item[0].prompt_tokens + item[0].output_tokens - 1
        for request in prefill:
            if request.output_tokens == 1:
                finish[request] = clock
            else:
                decoding.append([request, request.output_tokens - 1])
                kv += request.prompt_tokens
    return finish


def test_jumping_decode_steps_matches_stepping_one_by_one() -> None:
    perf = LinearStep(per_sequence=0.0005, per_cached_token=0.000001)
    rng = random.Random(7)
    requests, now = [], 0.0
    for _ in range(60):
        now += rng.expovariate(5.0)
        requests.append(Request(now, rng.randint(10, 200), rng.randint(1, 80)))
    engine = ReplicaEngine(perf)
    got = {request: times[1] for request, times in run(engine, requests).items()}
    expected = naive(perf, requests)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_snapshot_reports_busy_fraction_as_dcgm_does() -> None:
    """Busy whenever any step runs: one request for 1.1 s of a 10 s window is 11%."""
    engine = ReplicaEngine(LinearStep())
    engine.submit(Request(0.0, 100, 100), 0.0)  # 0.11 + 99 * 0.01 = 1.1 s of work
    engine.advance(10.0)
    metrics = engine.snapshot(10.0)
    assert metrics.gpu_busy == pytest.approx(0.11)
    assert metrics.ttft_samples == pytest.approx((0.11,))
    assert (metrics.waiting, metrics.running) == (0, 0)


def test_snapshot_counts_waiting_running_and_cache() -> None:
    engine = ReplicaEngine(LinearStep(kv_capacity_tokens=100, max_num_seqs=1))
    engine.submit(Request(0.0, 50, 30), 0.0)
    engine.submit(Request(0.0, 10, 5), 0.0)
    engine.advance(0.1)  # prefill done at 0.06, decoding
    metrics = engine.snapshot(0.1)
    assert (metrics.waiting, metrics.running) == (1, 1)
    assert 0.5 <= metrics.kv_cache_usage <= 0.6
    assert engine.in_flight == 2


def test_snapshot_counts_prompt_tokens_once_their_prefill_is_done() -> None:
    engine = ReplicaEngine(LinearStep(max_num_seqs=1))
    engine.submit(Request(0.0, 100, 20), 0.0)  # prefilled at 0.11 s
    engine.submit(Request(0.0, 300, 5), 0.0)  # waits for the only sequence slot
    engine.advance(0.2)
    assert engine.snapshot(0.2).prompt_tokens == 100
    engine.advance(10.0)
    assert engine.snapshot(10.0).prompt_tokens == 300  # only what came since the last one
    assert engine.snapshot(11.0).prompt_tokens == 0
