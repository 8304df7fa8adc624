"""Secondary signals: the latency SLO pushes up, and several signals veto a scale-down.

Both objectives count, TTFT and TPOT (time per output token): prompts that arrive while
others decode stretch every running request's steps, so a fleet can meet TTFT while its
generations crawl. Whichever is further over its target sets the push.

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


def _latencies(
    spec: ScalingPolicySpec, observation: Observation
) -> list[tuple[str, float, float]]:
    """(name, observed p95, target) for each objective with both a target and a value."""
    pairs = (("TTFT", observation.ttft_p95_seconds, spec.ttft_p95_target_seconds),
             ("TPOT", observation.tpot_p95_seconds, spec.tpot_p95_target_seconds))
    return [(name, value, target) for name, value, target in pairs
            if value is not None and target is not None and target > 0]


def _worst_breach(
    spec: ScalingPolicySpec, observation: Observation
) -> tuple[str, float, float] | None:
    """The objective furthest above its target by more than the tolerance, if any."""
    over = [item for item in _latencies(spec, observation)
            if item[1] > item[2] * (1 + spec.tolerance)]
    return max(over, key=lambda item: item[1] / item[2]) if over else None


def slo_breached(spec: ScalingPolicySpec, observation: Observation) -> bool:
    """TTFT or TPOT p95 above its target by more than the tolerance."""
    return _worst_breach(spec, observation) is not None


def slo_push(
    proposal: Proposal,
    spec: ScalingPolicySpec,
    observation: Observation,
    *,
    settling: bool,
) -> Proposal:
    """Add replicas on a TTFT or TPOT breach, unless capacity asked for earlier is still
    arriving."""
    breach = _worst_breach(spec, observation)
    if breach is None:
        return proposal
    current = observation.spec_replicas
    name, value, target = breach
    text = f"{name} p95 {value * 1000:.0f} ms over the {target * 1000:.0f} ms target"
    if settling:
        if proposal.replicas >= current:
            return proposal
        return Proposal(
            current, DecisionReason.COLD_START_GUARD, f"{text}; replicas still starting"
        )
    step = min((value / target - 1) / 2, MAX_BREACH_STEP)
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
    proposal: Proposal, spec: ScalingPolicySpec, observation: Observation, *, latency: bool = True
) -> Proposal:
    """Keep replicas when a secondary signal says the fleet is not really idle; `latency`
    False leaves out TTFT and TPOT (a backlog the proposal accounts for explains them)."""
    current = observation.spec_replicas
    if proposal.replicas >= current:
        return proposal
    for name, value, target in _latencies(spec, observation) if latency else ():
        if value > target:
            return Proposal(
                current,
                DecisionReason.SLO_BREACH,
                f"{name} p95 {value * 1000:.0f} ms is over target: not scaling down",
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
