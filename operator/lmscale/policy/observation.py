"""What the scaler saw this cycle: replica counts and fleet-wide metric values.

A metric is `None` when it is missing or stale; the policy treats that as "unknown",
never as zero (the KEDA #3065 trap).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Observation:
    """One cycle's view of a deployment.

    - `spec_replicas`: replicas currently asked of the Deployment.
    - `ready_replicas`: pods serving traffic; metrics come from these.
    - `starting_replicas` and `starting_ages`: pods created but not ready yet, with their
      ages in seconds (ages may be left empty when unknown).
    - `waiting`, `running`: requests summed over ready pods.
    - `kv_cache_usage`, `gpu_utilization`: 0-1 means over ready pods.
    - `ttft_p95_seconds`: fleet TTFT p95 over the metrics window.
    - `prompt_tokens_per_second`: prompt tokens the fleet prefilled per second over the
      metrics window.
    - `reporting_replicas`: ready pods that reported load; `None` means all of them.
    - `startup_samples`: creation-to-ready seconds of pods that became ready since the
      previous cycle; the policy learns the start-up time from them.
    """

    spec_replicas: int
    ready_replicas: int
    starting_replicas: int = 0
    starting_ages: tuple[float, ...] = ()
    waiting: float | None = None
    running: float | None = None
    kv_cache_usage: float | None = None
    ttft_p95_seconds: float | None = None
    gpu_utilization: float | None = None
    prompt_tokens_per_second: float | None = None
    reporting_replicas: int | None = None
    startup_samples: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if min(self.spec_replicas, self.ready_replicas, self.starting_replicas) < 0:
            raise ValueError("replica counts must not be negative")
        if self.starting_ages and len(self.starting_ages) != self.starting_replicas:
            raise ValueError(
                f"{len(self.starting_ages)} starting ages for {self.starting_replicas} "
                "starting replicas"
            )

    @property
    def load(self) -> float | None:
        """In-flight requests (running + waiting), or `None` if either is unknown."""
        if self.waiting is None or self.running is None:
            return None
        return self.waiting + self.running

    @property
    def reporting(self) -> int:
        """Ready pods whose load is included in `waiting` and `running`."""
        if self.reporting_replicas is None:
            return self.ready_replicas
        return min(self.reporting_replicas, self.ready_replicas)
