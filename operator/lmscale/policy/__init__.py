"""The scaling policy: a pure function from what was observed to desired replicas.

`decide(spec, observation, history, *, now) -> Decision` runs unchanged in the operator's
scaler and in the simulator, so the benchmark measures what the operator does.
"""

from lmscale.policy.decide import decide
from lmscale.policy.decision import Decision, DecisionReason
from lmscale.policy.history import Recommendation, ScaleEvent, ScalingHistory
from lmscale.policy.observation import Observation
from lmscale.policy.spec import (
    MissingMetricsMode,
    RuleType,
    ScalingDirection,
    ScalingPolicySpec,
    ScalingRule,
    SelectPolicy,
    default_scale_down,
    default_scale_up,
)

__all__ = [
    "Decision",
    "DecisionReason",
    "MissingMetricsMode",
    "Observation",
    "Recommendation",
    "RuleType",
    "ScaleEvent",
    "ScalingDirection",
    "ScalingHistory",
    "ScalingPolicySpec",
    "ScalingRule",
    "SelectPolicy",
    "decide",
    "default_scale_down",
    "default_scale_up",
]
