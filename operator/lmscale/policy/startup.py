"""Start-up time: seeded by the planner, learned from observed pod readiness."""

from __future__ import annotations

from lmscale.policy.history import ScalingHistory
from lmscale.policy.observation import Observation
from lmscale.policy.spec import ScalingPolicySpec

# Weight of each new readiness sample: a few start-ups move the estimate, one outlier
# (an image pull on a cold node) does not dominate it.
LEARNING_RATE = 0.3
# A pod still starting after this many estimated start-ups is stalled (unschedulable,
# crash-looping): it no longer counts as capacity on the way.
STALL_FACTOR = 2.0


def estimate(spec: ScalingPolicySpec, history: ScalingHistory) -> float:
    """Current start-up estimate in seconds."""
    if history.learned_startup_seconds is None:
        return spec.startup_seconds
    return history.learned_startup_seconds


def learn(
    spec: ScalingPolicySpec, history: ScalingHistory, observation: Observation
) -> float | None:
    """Fold this cycle's readiness samples into the estimate (exponential average)."""
    samples = [s for s in observation.startup_samples if s > 0]
    if not samples:
        return history.learned_startup_seconds
    value = estimate(spec, history)
    for sample in samples:
        value += LEARNING_RATE * (sample - value)
    return value


def on_the_way(observation: Observation, startup_seconds: float) -> int:
    """Starting pods expected to become ready: all of them unless ages show a stall."""
    if not observation.starting_ages:
        return observation.starting_replicas
    limit = STALL_FACTOR * startup_seconds
    return sum(1 for age in observation.starting_ages if age <= limit)
