"""Builders that keep each policy test case to the values it is about."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from lmscale.policy import Observation, ScalingDirection, ScalingPolicySpec, default_scale_down

# Scale-down with the default rules and no stabilization window: decisions show at once.
NO_WINDOW = ScalingDirection(0, default_scale_down().rules)


def make_spec(**overrides: Any) -> ScalingPolicySpec:
    """A spec with target 10 in flight per replica, 1-20 replicas, HPA default behaviour."""
    base: dict[str, Any] = {"min_replicas": 1, "max_replicas": 20, "target_per_replica": 10.0}
    base.update(overrides)
    return ScalingPolicySpec(**base)


def make_observation(
    *, replicas: int = 4, waiting: float | None = 0.0, running: float | None = 40.0, **extra: Any
) -> Observation:
    """An observation of `replicas` ready replicas carrying `waiting + running`."""
    base = Observation(
        spec_replicas=replicas, ready_replicas=replicas, waiting=waiting, running=running
    )
    return replace(base, **extra)
