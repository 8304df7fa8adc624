"""Scale from zero: the activator's wake request, and zero reached by idling. Pure.

The activator asks for a model to wake (an annotation with the time) when it holds a
request for a model without a ready backend, and asks again while it keeps holding. That
needs no Prometheus scrape, so the first held request wakes the model in the cycle it
triggers. A request older than the model's last scale to zero was answered (or timed out)
before it, so it wakes nothing.
"""

from __future__ import annotations

from dataclasses import replace

from lmscale.policy.history import ScalingHistory
from lmscale.policy.observation import Observation
from lmscale.policy.spec import ScalingPolicySpec

# The activator repeats its request every few seconds while it holds one; a request older
# than this is a leftover (an activator gone, an operator down meanwhile).
FRESH_SECONDS = 60.0


def last_zero_time(history: ScalingHistory) -> float | None:
    """When the policy scaled the model to zero, while it is at zero."""
    return history.zero_since


def with_wake_request(observation: Observation, history: ScalingHistory, *, now: float
                      ) -> Observation:
    """A fresh wake request counts as one held request (when Prometheus has not scraped
    the activator's queue yet, or does not scrape it at all): at zero it wakes the model,
    and while the activator keeps asking (requests still held) the model is not idle."""
    asked = observation.wake_requested_at
    if asked is None:
        return observation
    zero = last_zero_time(history)
    if now - asked > FRESH_SECONDS or (zero is not None and asked <= zero):
        return observation
    return replace(observation, held=max(observation.held or 0.0, 1.0))


def idled_to_zero(spec: ScalingPolicySpec, observation: Observation,
                  history: ScalingHistory) -> bool:
    """At zero because the policy scaled an idle model there (no pods, no series)."""
    return (spec.scale_to_zero and observation.spec_replicas == 0
            and observation.ready_replicas == 0 and last_zero_time(history) is not None)
