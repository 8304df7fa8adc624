"""The HPA controller's normalisation, shared by the HPA and KEDA baselines.

`horizontal.go`: replicas outside min/max are brought inside first; otherwise the
metric's recommendation goes through the default behaviour (stabilization windows and
rate rules, ported in `lmscale.policy.behavior`), keeping recommendations and scale
events in memory as the real controller does.
"""

from __future__ import annotations

from lmscale.policy import Recommendation, ScaleEvent, ScalingPolicySpec, behavior


class HpaController:
    """Recommendations and scale events of one HorizontalPodAutoscaler."""

    def __init__(self, *, min_replicas: int, max_replicas: int) -> None:
        # Only the bounds and the default behaviour of this spec are used.
        self.spec = ScalingPolicySpec(
            min_replicas=min_replicas, max_replicas=max_replicas, target_per_replica=1.0
        )
        self.recommendations: list[Recommendation] = []
        self.events: list[ScaleEvent] = []

    def out_of_bounds(self, current: int) -> int | None:
        """The count to move to when `current` is outside min/max."""
        spec = self.spec
        if current > spec.max_replicas:
            return spec.max_replicas
        if current < spec.min_replicas:
            return spec.min_replicas
        return None

    def normalize(self, raw: int, *, current: int, now: float) -> int:
        """Stabilize, rate-limit and bound a metric's recommendation; record the change."""
        spec = self.spec
        bounded = self.out_of_bounds(current)
        if bounded is not None:
            return self._record(now, current, bounded)
        if not self.recommendations:
            # maybeInitScaleDownStabilizationWindow: a new HPA does not scale down at once.
            self.recommendations.append(Recommendation(now, current))
        horizon = spec.history_horizon_seconds
        self.recommendations = [r for r in self.recommendations if r.time > now - horizon]
        self.events = [e for e in self.events if e.time > now - horizon]
        stable = behavior.stabilize(
            raw, current=current, recommendations=self.recommendations, spec=spec, now=now
        )
        self.recommendations.append(Recommendation(now, raw))
        wanted, _ = behavior.limit_rate(
            stable,
            current=current,
            events=tuple(self.events),
            spec=spec,
            min_allowed=spec.min_replicas,
            now=now,
        )
        return self._record(now, current, wanted)

    def _record(self, now: float, current: int, wanted: int) -> int:
        if wanted != current:
            self.events.append(ScaleEvent(now, current, wanted))
        return wanted
