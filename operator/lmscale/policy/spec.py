"""What a user asks of the autoscaler: bounds, targets and HPA-compatible behaviour.

Plain frozen data, validated on construction, so the scaler can build it from the custom
resource and the simulator from command-line flags and both get the same checks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from lmscale.policy import loadcurve

# The HPA's default tolerance band around the target (10%).
DEFAULT_TOLERANCE = 0.1


class RuleType(enum.StrEnum):
    """How a rate rule counts change, as in autoscaling/v2 `HPAScalingPolicyType`."""

    PODS = "Pods"
    PERCENT = "Percent"


class SelectPolicy(enum.StrEnum):
    """Which rule wins when several apply, as in autoscaling/v2 `selectPolicy`."""

    MAX = "Max"
    MIN = "Min"
    DISABLED = "Disabled"


class MissingMetricsMode(enum.StrEnum):
    """What to do without load metrics; never scale down on data we do not have."""

    HOLD = "hold"
    SCALE_UP_ONLY = "scaleUpOnly"
    FALLBACK = "fallback"


@dataclass(frozen=True)
class ScalingRule:
    """At most `value` pods (or percent) of change per `period_seconds`."""

    type: RuleType
    value: int
    period_seconds: int

    def __post_init__(self) -> None:
        if self.value <= 0:
            raise ValueError(f"scaling rule value must be positive, got {self.value}")
        if not 0 < self.period_seconds <= 1800:
            raise ValueError(f"scaling rule period must be 1-1800 s, got {self.period_seconds}")


@dataclass(frozen=True)
class ScalingDirection:
    """Behaviour for one direction: a stabilization window and rate rules."""

    stabilization_window_seconds: int
    rules: tuple[ScalingRule, ...]
    select_policy: SelectPolicy = SelectPolicy.MAX

    def __post_init__(self) -> None:
        if not 0 <= self.stabilization_window_seconds <= 3600:
            raise ValueError(
                f"stabilization window must be 0-3600 s, got {self.stabilization_window_seconds}"
            )

    @property
    def longest_period_seconds(self) -> int:
        """How long scale events matter to this direction's rate rules."""
        return max((rule.period_seconds for rule in self.rules), default=0)


def default_scale_up() -> ScalingDirection:
    """The HPA default: no window, at most +4 pods or +100% every 15 s, whichever is more."""
    return ScalingDirection(
        stabilization_window_seconds=0,
        rules=(
            ScalingRule(RuleType.PODS, 4, 15),
            ScalingRule(RuleType.PERCENT, 100, 15),
        ),
    )


def default_scale_down() -> ScalingDirection:
    """The HPA default: a 300 s window, then up to 100% every 15 s."""
    return ScalingDirection(
        stabilization_window_seconds=300,
        rules=(ScalingRule(RuleType.PERCENT, 100, 15),),
    )


@dataclass(frozen=True)
class ScalingPolicySpec:
    """Everything `decide` needs from the resource and the capacity plan.

    `target_per_replica` is in-flight requests (running + waiting) one replica carries
    within the SLO, normally `planner.slo.target_concurrency`. `startup_seconds` is the
    planner's cold-start estimate; the policy refines it from observed readiness.
    `load_window_seconds` averages the in-flight load over recent cycles, so one
    scrape's burst neither starts a replica (minutes of GPU time) nor, through the
    scale-down window's maximum, keeps one for five minutes. `trend_window_seconds`
    fits the load's rise over a longer span; replicas are sized for the load expected
    one start-up from now, when the replicas asked for now can serve (0 turns it off).
    `load_curve`, `(in-flight per replica, requests/s per replica)` points measured on
    the engine model, turns in-flight counts into rates before sizing (`loadcurve`);
    empty, in-flight counts are sized linearly, as the HPA does.
    `prompt_tokens_per_replica`, the prompt tokens per second one replica prefills within
    the SLO, sets a floor: in-flight counts miss a shift to longer prompts and shorter
    answers, which loads prefill while fewer requests are in flight (None: no floor).
    `scrape_interval_seconds` and `period_seconds` (how late metrics arrive, how often
    the policy runs) add to the start-up time to make the reaction time: how long a rise
    runs on the replicas already there (`lmscale.policy.volatility`).
    `front_door_counts_all`: the activator is in every request's path
    (`routing.activator: always`), so its arrival rate is the whole rate even where the
    engines export no completion counter; otherwise it counts only arrivals at zero.
    """

    max_replicas: int
    target_per_replica: float
    min_replicas: int = 1
    ttft_p95_target_seconds: float | None = None
    tpot_p95_target_seconds: float | None = None
    gpu_utilization_target: float | None = None
    tolerance: float = DEFAULT_TOLERANCE
    scale_up: ScalingDirection = field(default_factory=default_scale_up)
    scale_down: ScalingDirection = field(default_factory=default_scale_down)
    on_missing_metrics: MissingMetricsMode = MissingMetricsMode.HOLD
    fallback_replicas: int | None = None
    fallback_after_cycles: int = 3
    scale_to_zero: bool = False
    idle_seconds: float = 900.0
    startup_seconds: float = 120.0
    load_window_seconds: float = 60.0
    trend_window_seconds: float = 300.0
    load_curve: tuple[tuple[float, float], ...] = ()
    prompt_tokens_per_replica: float | None = None
    scrape_interval_seconds: float = 15.0
    period_seconds: float = 10.0
    front_door_counts_all: bool = False

    def __post_init__(self) -> None:
        for problem in self._problems():
            raise ValueError(problem)

    def _problems(self) -> list[str]:
        problems = []
        if self.min_replicas < 1:
            problems.append("min_replicas must be at least 1 (use scale_to_zero for zero)")
        if self.max_replicas < self.min_replicas:
            problems.append(
                f"max_replicas {self.max_replicas} is below min_replicas {self.min_replicas}"
            )
        if self.target_per_replica <= 0:
            problems.append(f"target_per_replica must be positive, got {self.target_per_replica}")
        if not 0 <= self.tolerance < 1:
            problems.append(f"tolerance must be in [0, 1), got {self.tolerance}")
        if self.gpu_utilization_target is not None and not 0 < self.gpu_utilization_target <= 1:
            problems.append("gpu_utilization_target is a fraction in (0, 1]")
        if (
            self.on_missing_metrics is MissingMetricsMode.FALLBACK
            and self.fallback_replicas is None
        ):
            problems.append("on_missing_metrics=fallback needs fallback_replicas")
        if self.fallback_replicas is not None and self.fallback_replicas < 0:
            problems.append("fallback_replicas must not be negative")
        if self.startup_seconds <= 0 or self.idle_seconds <= 0:
            problems.append("startup_seconds and idle_seconds must be positive")
        if self.load_window_seconds < 0 or self.trend_window_seconds < 0:
            problems.append("load_window_seconds and trend_window_seconds must not be negative")
        if self.scrape_interval_seconds < 0 or self.period_seconds <= 0:
            problems.append(
                "scrape_interval_seconds must not be negative and period_seconds must be positive"
            )
        if self.prompt_tokens_per_replica is not None and self.prompt_tokens_per_replica <= 0:
            problems.append("prompt_tokens_per_replica must be positive")
        problems += loadcurve.validate(self.load_curve)
        return problems

    @property
    def rate_at_target(self) -> float | None:
        """Requests/s one replica carries at the target, from the load curve (None without)."""
        if not self.load_curve:
            return None
        return loadcurve.rate_of(self.load_curve, self.target_per_replica)

    @property
    def history_horizon_seconds(self) -> float:
        """How far back recommendations and scale events can still matter."""
        return float(
            max(
                self.scale_up.stabilization_window_seconds,
                self.scale_down.stabilization_window_seconds,
                self.scale_up.longest_period_seconds,
                self.scale_down.longest_period_seconds,
            )
        )
