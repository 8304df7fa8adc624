"""The scaling policy: a pure function from what was observed to desired replicas.

`decide(spec, observation, history, *, now) -> Decision` runs unchanged in the operator's
scaler and in the simulator, so the benchmark measures what the operator does.

One cycle, in order:
1. bounds first, as the HPA does (above max -> max; below min -> min);
2. without load metrics, `onMissingMetrics`: hold (default), scale up only, or fall back
   to fixed replicas after `fallback_after_cycles` misses; never scale down on data we
   do not have;
3. the load: running + waiting, with the queue capped by the cold-start guard
   (`guard`), averaged over `load_window_seconds`, plus the rise a trend predicts over
   one start-up (`forecast`), mapped to a request rate through the engine's load curve
   (`loadcurve`) when the spec has one;
4. the HPA's replica calculation (`calculator`): a ratio to the target within a
   tolerance band, missing pods counted against the change, starting pods counted as
   capacity that carries nothing, never against the ratio;
5. secondary signals (`signals`): a TTFT or TPOT p95 over its objective pushes up (unless
   capacity is still arriving); the prompt-token rate sets a floor (a shift to long
   prompts loads prefill while fewer requests are in flight); TTFT, TPOT, GPU utilisation or
   a full KV cache veto a scale-down; GPU utilisation never scales up on its own;
6. scale to zero after `idle_seconds` without requests, when enabled. Limitation: with
   no replica there are no engine metrics and nothing serves, so the first request after
   idling waits a whole cold start, and something in front of the Service (a gateway
   that holds requests and reports them as waiting) must exist to wake the fleet;
7. the HPA's behaviour (`behavior`): stabilization windows (scale down to the highest,
   up to the lowest recommendation in the window) and rate rules per direction.
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
