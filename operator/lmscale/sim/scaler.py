"""The interface every policy in the simulator implements, and lmscale's own policy."""

from __future__ import annotations

from typing import Protocol

from lmscale import policy
from lmscale.sim.observe import ClusterView


class Scaler(Protocol):
    """Something that sets replicas every `period_seconds` from what it can see.

    `least_loaded_first`: scale-down removes the least-loaded replicas (the operator's
    pod-deletion-cost drain) instead of the ReplicaSet's default, the newest.
    """

    name: str
    period_seconds: float
    least_loaded_first: bool

    def desired(self, view: ClusterView) -> int: ...


class LmscaleScaler:
    """The operator's policy: `policy.decide` with its history carried between cycles."""

    least_loaded_first = True

    def __init__(self, spec: policy.ScalingPolicySpec, *, period_seconds: float = 10.0) -> None:
        self.name = "lmscale"
        self.spec = spec
        self.period_seconds = period_seconds
        self.history = policy.ScalingHistory()
        self.decisions: list[policy.Decision] = []

    def observation(self, view: ClusterView) -> policy.Observation:
        """What the operator's metrics layer would hand the policy."""
        pods = view.pods
        mean = (lambda values: sum(values) / len(values)) if pods else (lambda values: None)
        return policy.Observation(
            spec_replicas=view.spec_replicas,
            ready_replicas=view.ready_replicas,
            starting_replicas=len(view.starting_ages),
            starting_ages=view.starting_ages,
            waiting=float(view.waiting),
            running=float(view.running),
            kv_cache_usage=mean([p.kv_cache_usage for p in pods]),
            ttft_p95_seconds=view.ttft_p95_seconds,
            gpu_utilization=mean([p.gpu_busy for p in pods]),
            prompt_tokens_per_second=view.prompt_tokens_per_second,
            completions_per_second=view.completions_per_second,
            reporting_replicas=len(pods),
            startup_samples=view.startup_samples,
            held=view.front.held if view.front is not None else None,
            front_arrivals_per_second=(view.front.arrivals_per_second
                                       if view.front is not None else None),
            wake_requested_at=view.wake_requested_at,
        )

    def desired(self, view: ClusterView) -> int:
        decision = policy.decide(self.spec, self.observation(view), self.history, now=view.now)
        self.history = decision.history
        if decision.replicas != view.spec_replicas:
            self.decisions.append(decision)
        return decision.replicas
