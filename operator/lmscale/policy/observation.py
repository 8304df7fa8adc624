"""What the scaler saw this cycle: replica counts and fleet-wide metric values.

A metric is `None` when it is missing or stale; the policy treats that as "unknown",
never as zero (the KEDA #3065 trap).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FrontDoor:
    """One model as the activator sees it (the real one's series, or the simulator's)."""

    held: float | None = None
    arrivals_per_second: float | None = None


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
    - `tpot_p95_seconds`: fleet time-per-output-token (inter-token latency) p95, likewise.
    - `prompt_tokens_per_second`: prompt tokens the fleet prefilled per second over the
      metrics window.
    - `completions_per_second`: requests the fleet finished per second over the metrics
      window (the engines' success counters); with the change of in-flight it gives the
      arrival rate (`lmscale.policy.arrivals`).
    - `reporting_replicas`: ready pods that reported load; `None` means all of them.
    - `startup_samples`: creation-to-ready seconds of pods that became ready since the
      previous cycle; the policy learns the start-up time from them.
    - `held`: requests the activator holds for the model (summed over its replicas);
      `None` when the activator does not report the model.
    - `front_arrivals_per_second`: requests arriving at the activator per second (rate()
      over the metrics window): the wake's size at zero, and with replicas up a floor
      under the engines' arrival estimate (`lmscale.policy.arrivals.counted`).
    - `wake_requested_at`: when the activator last asked for the model to wake (Unix
      seconds), a request being held: the signal that needs no Prometheus scrape.
    """

    spec_replicas: int
    ready_replicas: int
    starting_replicas: int = 0
    starting_ages: tuple[float, ...] = ()
    waiting: float | None = None
    running: float | None = None
    kv_cache_usage: float | None = None
    ttft_p95_seconds: float | None = None
    tpot_p95_seconds: float | None = None
    gpu_utilization: float | None = None
    prompt_tokens_per_second: float | None = None
    completions_per_second: float | None = None
    reporting_replicas: int | None = None
    startup_samples: tuple[float, ...] = ()
    held: float | None = None
    front_arrivals_per_second: float | None = None
    wake_requested_at: float | None = None

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
        """In-flight requests (running + waiting), or `None` if either is unknown.

        The activator's held requests count on top. With no Ready replica they are the
        whole load: no engine exports series then, and that is not missing metrics while
        the activator reports.
        """
        engine = None if self.waiting is None or self.running is None else (
            self.waiting + self.running)
        if self.held is None:
            return engine
        if engine is None:
            return self.held if self.ready_replicas == 0 else None
        return engine + self.held  # requests the activator still holds are demand too

    @property
    def reporting(self) -> int:
        """Ready pods whose load is included in `waiting` and `running`."""
        if self.reporting_replicas is None:
            return self.ready_replicas
        return min(self.reporting_replicas, self.ready_replicas)
