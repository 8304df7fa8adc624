"""Mixed fleets in the simulator: a scarce preferred type, its fallback, the operator's rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmscale import policy
from lmscale.cli import main
from lmscale.planner import plan
from lmscale.scaler import variants
from lmscale.sim.cluster import Cluster
from lmscale.sim.fleet_scaler import LmscaleFleetScaler
from lmscale.sim.request import Request
from lmscale.sim.results import Slo, summarize
from lmscale.sim.scaler import LmscaleScaler
from lmscale.sim.simulator import GpuPool, SimConfig, SimRun, simulate, simulate_fleet

from .fakes import LinearStep

# Decode steps slow down with the batch, so too few replicas miss the TPOT objective.
FAST = LinearStep(cold_start_seconds=60.0, per_sequence=0.005, cost_per_hour=4.0)
SLOW = LinearStep(cold_start_seconds=60.0, fixed=0.02, per_prompt_token=0.002,
                  per_sequence=0.01, cost_per_hour=1.0)
SLO = Slo(ttft_seconds=1.0, tpot_seconds=0.1)
SPEC = policy.ScalingPolicySpec(max_replicas=8, target_per_replica=2.0, startup_seconds=60.0)
CONFIG = SimConfig(cold_start_seconds=60.0, initial_replicas=1, max_replicas=8)
AFTER = 60.0


def steady(rate: float, seconds: float, *, start: float = 0.0) -> list[Request]:
    return [Request(start + i / rate, 100, 20) for i in range(int(rate * seconds))]


# Quiet, then a burst that needs about 6 fast replicas for ten minutes, then quiet again.
TRAFFIC = steady(1.0, 300.0) + steady(12.0, 600.0, start=300.0) + steady(1.0, 900.0, start=900.0)


def members() -> list[variants.Member]:
    capacity = plan.plan_replica("qwen2.5-14b", "nvidia-l40s")  # only its price is read
    return [variants.Member("fast", "model", None, capacity, 1.0, 8),
            variants.Member("slow", "model-slow", "slow", capacity, 0.5, 8)]


def fleet_run(*, fast_available: int | None) -> SimRun:
    scaler = LmscaleFleetScaler(SPEC, members(), fallback_after_seconds=AFTER)
    pools = [GpuPool("fast", FAST, fast_available), GpuPool("slow", SLOW)]
    return simulate_fleet(TRAFFIC, pools, scaler, CONFIG)


def attainment(run: SimRun) -> float:
    return float(summarize(run, slo=SLO, gpus_per_replica=1, cost_per_replica_hour=1.0,
                           wall_seconds=1.0)["slo_attainment"])


def test_a_scarce_preferred_type_starves_and_its_capacity_moves_to_the_fallback() -> None:
    mixed = fleet_run(fast_available=2)
    alone = simulate(TRAFFIC, FAST, LmscaleScaler(SPEC),
                     SimConfig(cold_start_seconds=60.0, initial_replicas=1, max_replicas=8,
                               available_replicas=2))
    fast = [r for r in mixed.replicas if r.gpu_type == "fast"]
    slow = [r for r in mixed.replicas if r.gpu_type == "slow"]
    assert len(fast) == 2  # no more than its nodes hold ever ran
    assert slow and all(r.ready_at < TRAFFIC[-1].arrival_s for r in slow)
    # Only after the fast type's pods were refused for fallbackAfterSeconds.
    first_refused = next(p.time for p in mixed.timeline if p.by_type[0] > 2)
    assert min(r.created_at for r in slow) >= first_refused + AFTER
    assert attainment(mixed) > attainment(alone) + 0.1
    assert len(mixed.completed) == len(TRAFFIC)


def test_without_a_limit_nothing_goes_to_the_fallback() -> None:
    run = fleet_run(fast_available=None)
    assert max(p.by_type[0] for p in run.timeline) > 2
    assert all(p.by_type[1] == 0 for p in run.timeline)
    assert not [r for r in run.replicas if r.gpu_type == "slow"]


def test_a_full_type_leaves_replicas_pending_holding_nothing_until_a_node_frees() -> None:
    cluster = Cluster(FAST, cold_start_seconds=60.0, available=1, drain_grace_seconds=0.0)
    cluster.scale_to(3, 0.0, least_loaded_first=True)
    assert (cluster.size, cluster.placed, len(cluster.pending)) == (3, 1, 2)
    assert len(cluster.all_replicas()) == 1  # pending pods are no replicas: no GPU-seconds
    cluster.scale_to(2, 10.0, least_loaded_first=True)
    assert cluster.pending == [0.0]  # the newest pending pod went first
    cluster.become_ready(60.0)
    cluster.scale_to(1, 70.0, least_loaded_first=True)  # the pending one, not the ready one
    assert (len(cluster.serving), cluster.pending) == (1, [])


def test_the_cli_reads_type_and_limit_and_keeps_baselines_to_one_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "small.jsonl"
    path.write_text("".join(
        json.dumps({"timestamp": i * 400, "input_length": 300, "output_length": 40}) + "\n"
        for i in range(200)))
    args = ["simulate", "--trace", str(path), "--output", "json", "--target-per-replica", "4",
            "--gpu", "nvidia-h100-80gb:1"]
    assert main([*args, "--policy", "static:3"]) == 0
    capped = json.loads(capsys.readouterr().out)
    assert capped["max_replicas"] == 1  # static:3 on nodes that hold one
    assert main([*args, "--gpu", "nvidia-a100-80gb", "--policy", "static:3"]) == 2
    assert "one GPU type" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*args[:-2], "--gpu", "nvidia-h100-80gb:x"])
    assert "MAX_REPLICAS must be a whole number" in capsys.readouterr().err
