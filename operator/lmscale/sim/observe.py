"""What a scaler can see: Prometheus scrapes of ready pods, a scrape interval late.

Scrapes happen every `scrape_interval` seconds; a scaler cycle reads the latest scrape,
so metrics lag by up to one interval, as they do in a cluster. Pods that became ready
since the last scrape have no metrics yet (missing pod metrics, as the HPA sees them).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from lmscale.policy.observation import FrontDoor
from lmscale.sim.cluster import Cluster, Fleet
from lmscale.sim.engine import EngineMetrics
from lmscale.sim.request import CompletedRequest


@dataclass(frozen=True)
class ClusterView:
    """One scaler cycle's view of the fleet.

    `pods` holds the latest scrape of each serving replica scraped since it became ready;
    `gateway_waiting` counts requests held with no replica to serve them (scale from zero);
    `prompt_tokens_per_second` is the fleet's prefill rate over the rate window, as
    `rate(prompt_tokens_total[1m])` would read it (None before any replica was scraped);
    `completions_per_second` likewise from the engines' success counters;
    `front` the activator's series as the operator reads them and `wake_requested_at` its
    latest wake request (None without an activator, as without one in a cluster).
    """

    now: float
    spec_replicas: int
    ready_replicas: int
    starting_ages: tuple[float, ...]
    pods: tuple[EngineMetrics, ...]
    ttft_p95_seconds: float | None
    startup_samples: tuple[float, ...]
    gateway_waiting: int
    prompt_tokens_per_second: float | None = None
    completions_per_second: float | None = None
    front: FrontDoor | None = None
    wake_requested_at: float | None = None

    @property
    def waiting(self) -> int:
        return sum(pod.waiting for pod in self.pods) + self.gateway_waiting

    @property
    def running(self) -> int:
        return sum(pod.running for pod in self.pods)


class MetricStore:
    """The latest scrape per pod, and sliding windows of TTFT samples and prompt tokens."""

    def __init__(self, *, rate_window_seconds: float = 60.0) -> None:
        self.window = rate_window_seconds
        self.latest: dict[int, EngineMetrics] = {}
        self._ttft: deque[tuple[float, tuple[float, ...]]] = deque()
        self._prompt_tokens: deque[tuple[float, int]] = deque()
        self._completed: deque[tuple[float, int]] = deque()
        self._p95: float | None = None
        self._p95_fresh = True

    def scrape(self, cluster: Cluster | Fleet, now: float) -> list[CompletedRequest]:
        """Advance every serving replica to `now` and record its metrics."""
        done: list[CompletedRequest] = []
        self.latest = {
            replica.id: self.latest[replica.id]
            for replica in cluster.serving
            if replica.id in self.latest
        }
        for replica in cluster.serving:
            done.extend(replica.engine.advance(now))
            metrics = replica.engine.snapshot(now)
            self.latest[replica.id] = metrics
            if metrics.ttft_samples:
                self._ttft.append((now, metrics.ttft_samples))
            self._prompt_tokens.append((now, metrics.prompt_tokens))
            self._completed.append((now, metrics.completed))
        while self._ttft and self._ttft[0][0] <= now - self.window:
            self._ttft.popleft()
        while self._prompt_tokens and self._prompt_tokens[0][0] <= now - self.window:
            self._prompt_tokens.popleft()
        while self._completed and self._completed[0][0] <= now - self.window:
            self._completed.popleft()
        self._p95_fresh = False
        return done

    def ttft_p95(self) -> float | None:
        """p95 of the window's TTFT samples; `None` with no samples (no traffic)."""
        if not self._p95_fresh:
            samples = sorted(s for _, batch in self._ttft for s in batch)
            self._p95 = (
                samples[min(len(samples) - 1, int(0.95 * len(samples)))] if samples else None
            )
            self._p95_fresh = True
        return self._p95

    def view(self, cluster: Cluster | Fleet, now: float, *, gateway_waiting: int) -> ClusterView:
        """Freeze what a scaler sees now; consumes the start-up samples."""
        samples = tuple(cluster.take_startup_samples())
        pods = tuple(self.latest[r.id] for r in cluster.serving if r.id in self.latest)
        return ClusterView(
            now=now,
            spec_replicas=cluster.size,
            ready_replicas=len(cluster.serving),
            starting_ages=tuple(now - r.created_at for r in cluster.starting),
            pods=pods,
            ttft_p95_seconds=self.ttft_p95(),
            startup_samples=samples,
            gateway_waiting=gateway_waiting,
            prompt_tokens_per_second=(
                sum(tokens for _, tokens in self._prompt_tokens) / self.window
                if self._prompt_tokens else None
            ),
            completions_per_second=(
                sum(n for _, n in self._completed) / self.window if self._completed else None
            ),
        )
