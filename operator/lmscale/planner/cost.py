"""GPU-hours and money: replicas times GPUs per replica times the hourly price."""

from __future__ import annotations

from lmscale.planner import catalog


def replica_cost_per_hour(gpu: catalog.GpuType, gpus_per_replica: int) -> float:
    """USD per hour of one replica at the GPU's (possibly user-set) on-demand price."""
    return gpu.price_per_hour * gpus_per_replica


def gpu_hours(*, replicas: int, gpus_per_replica: int, hours: float) -> float:
    return replicas * gpus_per_replica * hours


def fleet_cost_per_hour(*, replicas: int, replica_cost: float) -> float:
    return replicas * replica_cost


def cost_per_million_tokens(*, cost_per_hour: float, tokens_per_second: float) -> float:
    """USD per million generated tokens at a sustained rate; inf when nothing is served."""
    if tokens_per_second <= 0:
        return float("inf")
    return cost_per_hour / (tokens_per_second * 3600) * 1e6
