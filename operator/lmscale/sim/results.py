"""Figures of a replay: latency percentiles, SLO attainment, GPU-hours and cost."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lmscale.sim.request import CompletedRequest
from lmscale.sim.simulator import SimRun


@dataclass(frozen=True)
class Slo:
    """The objectives a request must meet to count as served well (`None`: not given)."""

    ttft_seconds: float | None = None
    tpot_seconds: float | None = None

    def met(self, done: CompletedRequest) -> bool:
        if self.ttft_seconds is not None and done.ttft_seconds > self.ttft_seconds:
            return False
        return not (self.tpot_seconds is not None and done.tpot_seconds > self.tpot_seconds)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0-100) of unsorted values; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summarize(
    run: SimRun,
    *,
    slo: Slo,
    gpus_per_replica: int,
    cost_per_replica_hour: float,
    wall_seconds: float,
    prices: Mapping[str, tuple[int, float]] | None = None,
) -> dict[str, Any]:
    """The `--output json` object: every key listed in issue 6, plus a few more.

    `prices`: for a mixed fleet, GPUs per replica and cost per replica-hour of each GPU
    type (a replica's `gpu_type`); the figures then sum each type's own, and
    `replica_hours_by_type` splits the hours.
    """
    done = run.completed
    ttft = [c.ttft_seconds for c in done]
    tpot = [c.tpot_seconds for c in done if c.request.output_tokens > 1]
    queue = [c.queue_seconds for c in done]
    good = sum(1 for c in done if slo.met(c))
    held = [(r.gpu_type, r.gpu_seconds(until=run.trace_seconds)) for r in run.replicas]
    replica_seconds = sum(seconds for _, seconds in held)
    extra: dict[str, Any] = {}
    if prices is None:
        gpu_hours = replica_seconds * gpus_per_replica / 3600
        cost = replica_seconds / 3600 * cost_per_replica_hour
    else:
        gpu_hours = sum(seconds * prices[kind][0] for kind, seconds in held) / 3600
        cost = sum(seconds * prices[kind][1] for kind, seconds in held) / 3600
        extra["replica_hours_by_type"] = {
            kind: sum(s for k, s in held if k == kind) / 3600 for kind in prices}
    if run.activator is not None:
        # Refused requests were never answered: misses of the SLO, counted on their own.
        front = run.activator
        extra.update(held=len(front.held), timed_out=len(front.timed_out),
                     rejected=len(front.rejected),
                     hold_wait_p95_ms=_ms(percentile(front.waits, 95)))
    return {
        "policy": run.policy,
        "requests": run.requests,
        "completed": len(done),
        "dropped": len(run.dropped),
        "slo_attainment": good / run.requests if run.requests else 1.0,
        "ttft_p50_ms": _ms(percentile(ttft, 50)),
        "ttft_p95_ms": _ms(percentile(ttft, 95)),
        "ttft_p99_ms": _ms(percentile(ttft, 99)),
        "tpot_p95_ms": _ms(percentile(tpot, 95)),
        "queue_p95_ms": _ms(percentile(queue, 95)),
        "gpu_hours": gpu_hours,
        "replica_hours": replica_seconds / 3600,
        "cost": cost,
        "max_replicas": run.max_replicas,
        "scale_events": run.scale_events,
        "trace_seconds": run.trace_seconds,
        "wall_seconds": wall_seconds,
        "speedup": run.trace_seconds / wall_seconds if wall_seconds > 0 else math.inf,
        **extra,
        **run.notes,
    }


def windows(run: SimRun, *, seconds: float = 60.0) -> list[tuple[float, int, float, float]]:
    """Per window of arrival time: (start, arrivals, TTFT p95 s, mean replicas)."""
    if run.trace_seconds <= 0:
        return []
    count = max(1, math.ceil(run.trace_seconds / seconds))
    arrivals = [0] * count
    ttfts: list[list[float]] = [[] for _ in range(count)]
    for c in run.completed:
        index = min(count - 1, int(c.request.arrival_s // seconds))
        arrivals[index] += 1
        ttfts[index].append(c.ttft_seconds)
    for request in run.dropped:
        arrivals[min(count - 1, int(request.arrival_s // seconds))] += 1
    replicas: list[list[int]] = [[] for _ in range(count)]
    for point in run.timeline:
        replicas[min(count - 1, int(point.time // seconds))].append(point.replicas)
    return [
        (
            i * seconds,
            arrivals[i],
            percentile(ttfts[i], 95),
            sum(replicas[i]) / len(replicas[i]) if replicas[i] else math.nan,
        )
        for i in range(count)
    ]


def _ms(seconds: float) -> float:
    return seconds * 1000 if math.isfinite(seconds) else math.nan
