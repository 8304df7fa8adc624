"""One deployment's Observation for the policy, from its pods and its metrics (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from lmscale.controller.pods import PodInfo
from lmscale.metrics.activator import FrontDoor
from lmscale.metrics.results import DeploymentMetrics
from lmscale.policy import Observation


def observation(*, spec_replicas: int, pods: Sequence[PodInfo], metrics: DeploymentMetrics,
                now: datetime, since: datetime | None, front: FrontDoor | None = None,
                wake_requested_at: float | None = None) -> Observation:
    """`since` is the previous cycle's time: pods ready after it are start-up samples;
    `front` the activator's view of the model, `wake_requested_at` its wake request."""
    live = [p for p in pods if not p.terminating]
    ready = [p for p in live if p.ready]
    # A pod that no node can take is not capacity on the way: it must not hold back scale-up.
    starting = [p for p in live if not p.ready and p.unschedulable_message is None]
    samples = tuple(
        (p.ready_since - p.created).total_seconds()
        for p in ready
        if p.ready_since and p.created and since is not None and p.ready_since > since
    )
    return Observation(
        spec_replicas=spec_replicas,
        ready_replicas=len(ready),
        starting_replicas=len(starting),
        starting_ages=tuple(max(0.0, (now - p.created).total_seconds()) if p.created else 0.0
                            for p in starting),
        waiting=metrics.waiting,
        running=metrics.running,
        kv_cache_usage=metrics.kv_cache_usage,
        ttft_p95_seconds=metrics.ttft_p95_seconds,
        tpot_p95_seconds=metrics.tpot_p95_seconds,
        gpu_utilization=metrics.gpu_utilization,
        prompt_tokens_per_second=metrics.prompt_tokens_per_second,
        completions_per_second=metrics.completions_per_second,
        reporting_replicas=(None if metrics.reporting_replicas is None
                            else int(metrics.reporting_replicas)),
        startup_samples=samples,
        held=front.held if front is not None else None,
        front_arrivals_per_second=front.arrivals_per_second if front is not None else None,
        wake_requested_at=wake_requested_at,
    )
