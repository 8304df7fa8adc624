"""`static:N`: a fixed replica count, what a Deployment without an autoscaler runs."""

from __future__ import annotations

from lmscale.sim.observe import ClusterView


class StaticScaler:
    """Always `replicas`; never scales."""

    least_loaded_first = False

    def __init__(self, replicas: int, *, name: str | None = None) -> None:
        if replicas < 1:
            raise ValueError(f"static needs at least 1 replica, got {replicas}")
        self.replicas = replicas
        self.name = name or f"static:{replicas}"
        self.period_seconds = 60.0

    def desired(self, view: ClusterView) -> int:
        return self.replicas
