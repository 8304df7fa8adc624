"""A benchmark scenario: a trace on a model and GPU under an SLO, from the planner.

Everything a policy run needs, derived once: the replica's step-time model and cold
start from the capacity plan, and the target in-flight requests per replica for
`policy.ScalingPolicySpec.target_per_replica`, calibrated on the engine model at the
trace's token lengths (`lmscale.sim.calibrate`). The planner's mean-latency target
(`planner.slo.target_concurrency`) is kept alongside for comparison.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from lmscale.planner import performance, plan, slo
from lmscale.policy.spec import DEFAULT_TOLERANCE
from lmscale.sim import calibrate
from lmscale.sim.request import Request
from lmscale.sim.results import Slo
from lmscale.sim.simulator import SimConfig


@dataclass(frozen=True)
class GpuType:
    """One GPU type a scenario's fleet may run on: its plan, replica model and calibration.

    `weight` is what one replica carries in replicas of the primary type (the ratio of the
    calibrated targets, as the operator weighs a fallback); `available` how many replicas
    its nodes hold (None: as many as asked).
    """

    gpu: str
    plan: plan.CapacityPlan = field(repr=False)
    perf: performance.ReplicaPerformance = field(repr=False)
    calibration: calibrate.Calibration
    weight: float
    available: int | None = None


@dataclass(frozen=True)
class Scenario:
    """Inputs shared by every policy replayed on one trace."""

    requests: Sequence[Request] = field(repr=False)
    perf: performance.ReplicaPerformance = field(repr=False)
    slo: Slo
    calibration: calibrate.Calibration
    tpot_at_target_seconds: float
    planner_target: float
    config: SimConfig
    min_replicas: int = 1
    max_replicas: int = 32
    attainment_goal: float = 0.99
    warm_replicas: int = 1
    # A mixed fleet: every GPU type in order, the primary first (empty: the primary alone).
    fleet: tuple[GpuType, ...] = ()
    fallback_after_seconds: float = 60.0

    @property
    def gpus_per_replica(self) -> int:
        return self.perf.gpus

    @property
    def target_per_replica(self) -> float:
        """In-flight requests per replica lmscale aims at."""
        return self.calibration.target

    @property
    def rate_per_replica(self) -> float:
        """Requests per second one replica carries at the top of the tolerance band."""
        return self.calibration.rate


def token_means(requests: Sequence[Request]) -> tuple[float, float]:
    """Mean prompt and output tokens of a trace, in whole tokens.

    Whole tokens because the planner's latency model chunks a fractional mean prompt into
    one extra prefill step (1154.7 tokens at a 1154-token chunk), halving the target.
    """
    if not requests:
        return 1.0, 1.0
    count = len(requests)
    return (
        float(round(sum(r.prompt_tokens for r in requests) / count)),
        float(round(sum(r.output_tokens for r in requests) / count)),
    )


def build(
    requests: Sequence[Request],
    *,
    model: str,
    gpu: str,
    ttft_seconds: float | None,
    tpot_seconds: float | None,
    min_replicas: int = 1,
    max_replicas: int = 32,
    config: SimConfig | None = None,
    cold_start_seconds: float | None = None,
    attainment_goal: float = 0.99,
    calibration: calibrate.Calibration | None = None,
    target_per_replica: float | None = None,
    available: int | None = None,
    fallbacks: Sequence[tuple[str, int | None]] = (),
    fallback_after_seconds: float = 60.0,
) -> Scenario:
    """Plan the replica and derive the per-replica target for this trace's token mix.

    A given `calibration` skips calibrating (for replays of the same token mix); a given
    `target_per_replica` replaces it (a user's hand-set target). `available` caps the
    replicas the primary type's nodes hold; `fallbacks` are further GPU types (each with
    its own cap), planned and calibrated like the primary, for a mixed fleet.
    """
    capacity = plan.plan_replica(model, gpu)
    perf = performance.replica_performance(capacity)
    prompt, output = token_means(requests)
    # An objective not given constrains nothing: a loose stand-in for the planner.
    ttft = ttft_seconds if ttft_seconds is not None else 60.0
    tpot = tpot_seconds if tpot_seconds is not None else 10.0
    planner_target = slo.target_concurrency(
        perf,
        ttft_p95_s=ttft,
        tpot_p95_s=tpot,
        mean_prompt_tokens=prompt,
        mean_output_tokens=output,
    )
    objectives = Slo(ttft_seconds=ttft_seconds, tpot_seconds=tpot_seconds)
    lengths = [
        (r.prompt_tokens, r.output_tokens) for r in requests[:: max(1, len(requests) // 5000)]
    ]
    if target_per_replica is not None:
        calibration = calibrate.Calibration(target_per_replica, math.nan, math.nan)
    elif calibration is None:
        calibration = calibrate.calibrate(perf, lengths, slo=objectives, goal=attainment_goal)
    target = calibration.target
    latency = slo.latency_at(
        perf,
        concurrency=max(1, round(target)),
        mean_prompt_tokens=prompt,
        mean_output_tokens=output,
    )
    cold = cold_start_seconds if cold_start_seconds is not None else perf.cold_start_seconds
    base = replace(
        config or SimConfig(cold_start_seconds=cold),
        cold_start_seconds=cold,
        max_replicas=max_replicas,
        available_replicas=available,
    )
    fleet: tuple[GpuType, ...] = ()
    if fallbacks:
        primary = GpuType(gpu, capacity, perf, calibration, 1.0, available)
        fleet = (primary, *(
            _fallback(model, name, cap, lengths, objectives, attainment_goal,
                      primary=_for_weights(calibration, perf, lengths, objectives,
                                           attainment_goal))
            for name, cap in fallbacks))
    scenario = Scenario(
        requests=requests,
        perf=perf,
        slo=objectives,
        calibration=calibration,
        tpot_at_target_seconds=latency.tpot_s,
        planner_target=planner_target,
        config=base,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        attainment_goal=attainment_goal,
        fleet=fleet,
        fallback_after_seconds=fallback_after_seconds,
    )
    return _with_warm_start(scenario)


def _for_weights(calibration: calibrate.Calibration, perf: performance.ReplicaPerformance,
                 lengths: Sequence[tuple[int, int]], objectives: Slo,
                 goal: float) -> calibrate.Calibration:
    """The primary's calibration to weigh fallbacks by: calibrated even when the user set
    the target by hand, so that a weight compares two calibrations, not a hand and one."""
    if math.isfinite(calibration.rate):
        return calibration
    return calibrate.calibrate(perf, lengths, slo=objectives, goal=goal)


def _fallback(model: str, gpu: str, available: int | None, lengths: Sequence[tuple[int, int]],
              objectives: Slo, goal: float, *, primary: calibrate.Calibration) -> GpuType:
    """A fallback type planned and calibrated like the primary, weighed against it (the
    operator's `capacity_weights`: its target over the primary's)."""
    capacity = plan.plan_replica(model, gpu)
    perf = performance.replica_performance(capacity)
    calibration = calibrate.calibrate(perf, lengths, slo=objectives, goal=goal)
    weight = max(calibration.target, 1e-6) / primary.target if primary.target > 0 else 1.0
    return GpuType(gpu, capacity, perf, calibration, weight, available)


def _with_warm_start(scenario: Scenario) -> Scenario:
    """Start autoscaled fleets sized for the load of the first cold start and minute.

    A fleet in steady operation would already run about that many replicas; starting
    smaller would charge every reactive policy a ramp-up the trace does not contain.
    """
    horizon = scenario.config.cold_start_seconds + 60.0
    per_minute: dict[int, int] = {}
    for request in scenario.requests:
        if request.arrival_s > horizon:
            break
        minute = int(request.arrival_s // 60)
        per_minute[minute] = per_minute.get(minute, 0) + 1
    busiest = max(per_minute.values(), default=0) / 60.0
    if not math.isfinite(scenario.rate_per_replica) or scenario.rate_per_replica <= 0:
        return replace(scenario, warm_replicas=scenario.min_replicas)
    # At the target, the middle of the tolerance band, where a settled fleet sits.
    warm = math.ceil(busiest * (1 + DEFAULT_TOLERANCE) / scenario.rate_per_replica - 1e-9)
    warm = min(scenario.max_replicas, max(scenario.min_replicas, warm))
    return replace(scenario, warm_replicas=warm)
