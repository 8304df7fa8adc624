"""HPA `behavior`: stabilization windows and rate rules, ported from horizontal.go.

Same arithmetic as `stabilizeRecommendationWithBehaviors`,
`calculateScaleUpLimitWithScalingRules` and `calculateScaleDownLimitWithBehaviors`, but
with `now` and the history passed in instead of read from the clock and process memory.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from lmscale.policy.decision import DecisionReason
from lmscale.policy.history import Recommendation, ScaleEvent
from lmscale.policy.spec import RuleType, ScalingDirection, ScalingPolicySpec, SelectPolicy


def stabilize(
    desired: int,
    *,
    current: int,
    recommendations: Iterable[Recommendation],
    spec: ScalingPolicySpec,
    now: float,
) -> int:
    """Scale up to the lowest, and down to the highest, recommendation in each window."""
    up = down = desired
    up_cutoff = now - spec.scale_up.stabilization_window_seconds
    down_cutoff = now - spec.scale_down.stabilization_window_seconds
    for rec in recommendations:
        if rec.time > up_cutoff:
            up = min(up, rec.replicas)
        if rec.time > down_cutoff:
            down = max(down, rec.replicas)
    return min(max(current, up), down)


def _changes_in_period(events: Iterable[ScaleEvent], period: int, now: float) -> tuple[int, int]:
    """Replicas added and deleted by events inside the last `period` seconds."""
    added = deleted = 0
    for event in events:
        if event.time > now - period:
            if event.change > 0:
                added += event.change
            else:
                deleted -= event.change
    return added, deleted


def scale_up_limit(
    current: int, events: tuple[ScaleEvent, ...], direction: ScalingDirection, now: float
) -> int:
    """The most replicas the scale-up rules allow now."""
    if direction.select_policy is SelectPolicy.DISABLED:
        return current
    proposals = []
    for rule in direction.rules:
        added, deleted = _changes_in_period(events, rule.period_seconds, now)
        start = current - added + deleted
        if rule.type is RuleType.PODS:
            proposals.append(start + rule.value)
        else:
            # Rounded up, or a small fleet could never grow by a percentage.
            proposals.append(math.ceil(start * (1 + rule.value / 100)))
    if not proposals:
        return current
    return min(proposals) if direction.select_policy is SelectPolicy.MIN else max(proposals)


def scale_down_limit(
    current: int, events: tuple[ScaleEvent, ...], direction: ScalingDirection, now: float
) -> int:
    """The fewest replicas the scale-down rules allow now."""
    if direction.select_policy is SelectPolicy.DISABLED:
        return current
    proposals = []
    for rule in direction.rules:
        added, deleted = _changes_in_period(events, rule.period_seconds, now)
        start = current - added + deleted
        if rule.type is RuleType.PODS:
            proposals.append(start - rule.value)
        else:
            proposals.append(int(start * (1 - rule.value / 100)))
    if not proposals:
        return current
    return max(proposals) if direction.select_policy is SelectPolicy.MIN else min(proposals)


def limit_rate(
    desired: int,
    *,
    current: int,
    events: tuple[ScaleEvent, ...],
    spec: ScalingPolicySpec,
    min_allowed: int,
    now: float,
) -> tuple[int, DecisionReason | None]:
    """Clamp `desired` by the rate rules and the replica bounds; say what limited it."""
    if desired > current:
        up_limit = max(scale_up_limit(current, events, spec.scale_up, now), current)
        if spec.max_replicas > up_limit:
            ceiling, reason = up_limit, DecisionReason.SCALE_UP_LIMIT
        else:
            ceiling, reason = spec.max_replicas, DecisionReason.TOO_MANY_REPLICAS
        if desired > ceiling:
            return ceiling, reason
    elif desired < current:
        down_limit = min(scale_down_limit(current, events, spec.scale_down, now), current)
        if min_allowed < down_limit:
            floor, reason = down_limit, DecisionReason.SCALE_DOWN_LIMIT
        else:
            floor, reason = min_allowed, DecisionReason.TOO_FEW_REPLICAS
        if desired < floor:
            return floor, reason
    return desired, None
