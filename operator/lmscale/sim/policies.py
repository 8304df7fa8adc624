"""Policy names as the CLI and the benchmark spell them, and how to replay each.

`lmscale`, `static:N`, `static-peak`, `hpa-gpu-util[:TARGET]` (fraction or percent),
`keda-queue[:THRESHOLD]` and `oracle`. `static-peak` and `oracle` search (several
replays); the others replay once. The wall clock is injected so this stays pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from lmscale import policy
from lmscale.policy import fleet as fleet_policy
from lmscale.scaler import variants
from lmscale.sim.activator import ActivatorMode
from lmscale.sim.baselines import hpa_gpu_util, keda_queue, oracle, static, static_peak
from lmscale.sim.fleet_scaler import LmscaleFleetScaler
from lmscale.sim.results import summarize
from lmscale.sim.scaler import LmscaleScaler, Scaler
from lmscale.sim.scenario import Scenario
from lmscale.sim.simulator import GpuPool, SimRun, simulate, simulate_fleet

POLICIES = ("lmscale", "static:N", "static-peak", "hpa-gpu-util[:0.7]", "keda-queue[:5]", "oracle")


@dataclass
class Outcome:
    """One policy's final replay, its figures, and what a search chose."""

    run: SimRun
    summary: dict[str, Any]


def parse(text: str) -> tuple[str, float | None]:
    """`'hpa-gpu-util:70'` -> `('hpa-gpu-util', 0.7)`; raises `ValueError` if unknown."""
    name, _, argument = text.strip().partition(":")
    known = {"lmscale", "static", "static-peak", "hpa-gpu-util", "keda-queue", "oracle"}
    if name not in known:
        raise ValueError(f"unknown policy {text!r}; choose from {', '.join(POLICIES)}")
    if not argument:
        if name == "static":
            raise ValueError("static needs a replica count: static:N")
        return name, None
    try:
        value = float(argument)
    except ValueError as error:
        raise ValueError(f"policy argument {argument!r} of {name} is not a number") from error
    if name == "hpa-gpu-util" and value > 1:
        value /= 100  # a percentage, as DCGM reports it
    return name, value


def lmscale_spec(scenario: Scenario) -> policy.ScalingPolicySpec:
    """The spec the operator builds: the calibrated target and load curve, the SLO, the
    planner's start-up estimate."""
    return policy.ScalingPolicySpec(
        min_replicas=scenario.min_replicas,
        max_replicas=scenario.max_replicas,
        target_per_replica=scenario.target_per_replica,
        ttft_p95_target_seconds=scenario.slo.ttft_seconds,
        startup_seconds=scenario.perf.cold_start_seconds,
        load_curve=scenario.calibration.curve,
        prompt_tokens_per_replica=scenario.calibration.prompt_tokens_rate,
        scrape_interval_seconds=scenario.config.scrape_interval_seconds,
        front_door_counts_all=(scenario.config.activator is not None
                               and scenario.config.activator.mode is ActivatorMode.ALWAYS),
    )


def run(
    text: str,
    scenario: Scenario,
    *,
    clock: Callable[[], float],
    progress: Callable[[float], None] | None = None,
) -> Outcome:
    """Replay the named policy (searching where the policy is a search)."""
    name, argument = parse(text)
    if scenario.fleet:
        if name != "lmscale":
            raise ValueError(f"{text} runs on one GPU type; several are for lmscale")
        return replay_fleet(scenario, clock=clock, progress=progress)
    if name == "static-peak":
        return _static_peak(scenario, clock=clock, progress=progress)
    if name == "oracle":
        return _oracle(scenario, clock=clock, progress=progress)
    return replay(scaler_for(name, argument, scenario), scenario, clock=clock, progress=progress)


def replay(
    scaler: Scaler,
    scenario: Scenario,
    *,
    clock: Callable[[], float],
    progress: Callable[[float], None] | None = None,
    initial_replicas: int | None = None,
) -> Outcome:
    """One replay of `scaler` and its summary."""
    warm = scenario.warm_replicas if initial_replicas is None else initial_replicas
    config = replace(scenario.config, initial_replicas=warm)
    started = clock()
    result = simulate(scenario.requests, scenario.perf, scaler, config, progress=progress)
    summary = summarize(
        result,
        slo=scenario.slo,
        gpus_per_replica=scenario.perf.gpus,
        cost_per_replica_hour=scenario.perf.cost_per_hour,
        wall_seconds=clock() - started,
    )
    return Outcome(result, summary)


def replay_fleet(
    scenario: Scenario,
    *,
    clock: Callable[[], float],
    progress: Callable[[float], None] | None = None,
    strategy: fleet_policy.Strategy = fleet_policy.Strategy.ORDERED,
) -> Outcome:
    """lmscale on the scenario's mixed fleet: each type's replicas on its own model."""
    members = [
        variants.Member(t.gpu, f"model-{t.gpu}", None if i == 0 else t.gpu, t.plan, t.weight,
                        scenario.max_replicas)
        for i, t in enumerate(scenario.fleet)
    ]
    scaler = LmscaleFleetScaler(lmscale_spec(scenario), members, strategy=strategy,
                                fallback_after_seconds=scenario.fallback_after_seconds)
    pools = [GpuPool(t.gpu, t.perf, t.available, capacity=t.calibration.target)
             for t in scenario.fleet]
    config = replace(scenario.config, initial_replicas=scenario.warm_replicas)
    started = clock()
    result = simulate_fleet(scenario.requests, pools, scaler, config, progress=progress)
    summary = summarize(
        result,
        slo=scenario.slo,
        gpus_per_replica=scenario.perf.gpus,
        cost_per_replica_hour=scenario.perf.cost_per_hour,
        wall_seconds=clock() - started,
        prices={t.gpu: (t.perf.gpus, t.perf.cost_per_hour) for t in scenario.fleet},
    )
    return Outcome(result, summary)


def scaler_for(name: str, argument: float | None, scenario: Scenario) -> Scaler:
    """The scaler a single-replay policy name stands for, bounded by the scenario."""
    bounds = {"min_replicas": scenario.min_replicas, "max_replicas": scenario.max_replicas}
    if name == "lmscale":
        return LmscaleScaler(lmscale_spec(scenario))
    if name == "static":
        return static.StaticScaler(int(argument or 1))
    if name == "hpa-gpu-util":
        return hpa_gpu_util.HpaGpuUtilScaler(target=argument or 0.7, **bounds)
    return keda_queue.KedaQueueScaler(threshold=argument or 5.0, **bounds)


def _static_peak(
    scenario: Scenario, *, clock: Callable[[], float], progress: Callable[[float], None] | None
) -> Outcome:
    outcomes: dict[int, Outcome] = {}

    def attainment_of(replicas: int) -> tuple[float, SimRun]:
        scaler = static.StaticScaler(replicas, name="static-peak")
        outcome = replay(
            scaler, scenario, clock=clock, progress=progress, initial_replicas=replicas
        )
        outcomes[replicas] = outcome
        return outcome.summary["slo_attainment"], outcome.run

    chosen, _ = static_peak.search(
        attainment_of, goal=scenario.attainment_goal, low=1, high=scenario.max_replicas
    )
    outcome = outcomes[chosen]
    outcome.summary["chosen"] = f"{chosen} replicas"
    outcome.summary["search_runs"] = len(outcomes)
    return outcome


def _oracle(
    scenario: Scenario, *, clock: Callable[[], float], progress: Callable[[float], None] | None
) -> Outcome:
    demand = oracle.mean_in_flight(
        scenario.requests, perf=scenario.perf, tpot_seconds=scenario.tpot_at_target_seconds
    )
    lead = scenario.config.cold_start_seconds + oracle.TICK_SECONDS
    outcomes: dict[float, Outcome] = {}

    def attainment_of(factor: float) -> tuple[float, SimRun]:
        need = oracle.need_for(
            demand,
            per_replica=scenario.target_per_replica * factor,
            minimum=scenario.min_replicas,
        )
        need = [min(n, scenario.max_replicas) for n in need]
        scaler = oracle.OracleScaler(need, lead_seconds=lead)
        # Replicas needed within the first cold start were started before the trace.
        warm = max(need[: int(lead // oracle.BIN_SECONDS) + 1], default=1)
        outcome = replay(scaler, scenario, clock=clock, progress=progress, initial_replicas=warm)
        outcomes[factor] = outcome
        return outcome.summary["slo_attainment"], outcome.run

    factor, _ = oracle.search(attainment_of, goal=scenario.attainment_goal)
    outcome = outcomes[factor]
    outcome.summary["chosen"] = f"{factor * scenario.target_per_replica:.1f} in flight per replica"
    outcome.summary["search_runs"] = len(outcomes)
    return outcome
