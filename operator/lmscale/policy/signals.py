"""Secondary signals: the TTFT SLO pushes up, and several signals veto a scale-down.

GPU utilisation never scales up on its own: DCGM reads near 100% whenever any kernel
runs, so one request saturates it. It may only keep replicas from being removed.
"""

from __future__ import annotations

from lmscale.policy.calculator import Proposal, ceil
from lmscale.policy.decision import DecisionReason
from lmscale.policy.observation import Observation
from lmscale.policy.spec import ScalingPolicySpec

# An SLO push adds half the breach ratio's excess, at most this fraction of the ready
# replicas: TTFT grows faster than linearly near saturation, so the ratio overstates
# what is missing.
MAX_BREACH_STEP = 0.25
# After a scale-up, the TTFT window still holds latencies from before the new replicas;
# wait this long past their start-up before a breach can push again.
SLO_SETTLE_SECONDS = 60.0
# A KV cache this full means requests queue for memory, not for compute.
KV_CACHE_FULL = 0.9


def slo_breached(spec: ScalingPolicySpec, observation: Observation) -> bool:
    """TTFT p95 above target by more than the tolerance."""
    ttft, target = observation.ttft_p95_seconds, spec.ttft_p95_target_seconds
    return ttft is not None and target is not None and ttft > target * (1 + spec.tolerance)


def slo_push(
    proposal: Proposal,
    spec: ScalingPolicySpec,
    observation: Observation,
    *,
    settling: bool,
) -> Proposal:
    """Add replicas on a TTFT breach, unless capacity asked for earlier is still arriving."""
    if not slo_breached(spec, observation):
        return proposal
    current = observation.spec_replicas
    ttft, target = observation.ttft_p95_seconds or 0.0, spec.ttft_p95_target_seconds or 1.0
    text = f"TTFT p95 {ttft * 1000:.0f} ms over the {target * 1000:.0f} ms target"
    if settling:
        if proposal.replicas >= current:
            return proposal
        return Proposal(
            current, DecisionReason.COLD_START_GUARD, f"{text}; replicas still starting"
        )
    step = min((ttft / target - 1) / 2, MAX_BREACH_STEP)
    pushed = max(current + 1, ceil(observation.ready_replicas * (1 + step)))
    if pushed <= proposal.replicas:
        return proposal
    return Proposal(pushed, DecisionReason.SLO_BREACH, f"{text}: {pushed} wanted")


def prefill_floor(
    proposal: Proposal, spec: ScalingPolicySpec, observation: Observation
) -> Proposal:
    """At least the replicas the prompt-token rate needs, whatever the in-flight count says.

    Like the load, it acts only past the tolerance band: `prompt_tokens_per_replica` is
    already the top of what one replica carries within the SLO.
    """
    rate, per_replica = observation.prompt_tokens_per_second, spec.prompt_tokens_per_replica
    if rate is None or per_replica is None:
        return proposal
    wanted = ceil(rate / (per_replica * (1 + spec.tolerance)))
    if wanted <= proposal.replicas:
        return proposal
    return Proposal(
        wanted,
        DecisionReason.PREFILL_ABOVE_TARGET,
        f"{rate:.0f} prompt tokens/s, {per_replica:.0f} per replica: {wanted} wanted",
    )


def veto_scale_down(
    proposal: Proposal, spec: ScalingPolicySpec, observation: Observation
) -> Proposal:
    """Keep replicas when a secondary signal says the fleet is not really idle."""
    current = observation.spec_replicas
    if proposal.replicas >= current:
        return proposal
    ttft, ttft_target = observation.ttft_p95_seconds, spec.ttft_p95_target_seconds
    if ttft is not None and ttft_target is not None and ttft > ttft_target:
        return Proposal(
            current,
            DecisionReason.SLO_BREACH,
            f"TTFT p95 {ttft * 1000:.0f} ms is over target: not scaling down",
        )
    util, util_target = observation.gpu_utilization, spec.gpu_utilization_target
    if util is not None and util_target is not None and util > util_target:
        return Proposal(
            current,
            DecisionReason.GPU_UTILIZATION_HIGH,
            f"GPU utilisation {util:.0%} over {util_target:.0%}: not scaling down",
        )
    kv = observation.kv_cache_usage
    if kv is not None and kv >= KV_CACHE_FULL:
        return Proposal(
            current, DecisionReason.KV_CACHE_FULL, f"KV cache {kv:.0%} full: not scaling down"
        )
    return proposal
