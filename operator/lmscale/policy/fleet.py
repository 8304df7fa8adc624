"""A fleet over several GPU types: capacity in units, spread over the types (pure).

`decide` sizes a deployment in replicas of its primary GPU type. With
`accelerator.fallbacks` the replicas may run on other types, each of which carries a
different load at the SLO; one *unit* of capacity is what one primary replica carries (its
calibrated target), and a replica of another type counts `weight` units (its own target over
the primary's). This module turns the units `decide` asked for into replicas per type:

- ordered: the primary first, then each fallback in order, each up to its cap;
- cheapest: the types by price per unit, each up to its cap, the last share on whichever
  type carries it for the least;
- a type whose new pods the scheduler has left unschedulable for `fallback_after_seconds`
  is *starved*: it counts only the pods it got, plus one probe pod that keeps asking, so
  the capacity it misses goes to the next type, and the probe tells when it frees up;
- moving back (a type no longer starved, or the load falling) takes replicas off the
  later types first, but never so many that ready capacity falls below what the load needs
  (or what is ready now, if less) before the replacements are ready.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

# The probe: a starved type keeps asking for this many pods beyond what it got.
PROBE_PODS = 1


class Strategy(StrEnum):
    ORDERED = "ordered"
    CHEAPEST = "cheapest"


@dataclass(frozen=True)
class Variant:
    """One GPU type of the fleet, as this cycle sees it.

    - `weight`: units one replica carries (its target over the primary's; 1 for the primary).
    - `replicas`: what its Deployment asks for now; `ready`: pods serving.
    - `unschedulable`: its pods the scheduler cannot place now, and `unschedulable_seconds`
      how long the oldest of them has been so (0 with none).
    """

    key: str
    weight: float
    cost_per_hour: float
    max_replicas: int
    replicas: int = 0
    ready: int = 0
    unschedulable: int = 0
    unschedulable_seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.weight <= 0:
            raise ValueError(f"{self.key}: weight must be positive, not {self.weight}")
        if min(self.max_replicas, self.replicas, self.ready, self.unschedulable) < 0:
            raise ValueError(f"{self.key}: replica counts must not be negative")

    @property
    def placed(self) -> int:
        """Pods the scheduler placed (ready or starting)."""
        return max(0, self.replicas - self.unschedulable)

    @property
    def cost_per_unit(self) -> float:
        return self.cost_per_hour / self.weight


@dataclass(frozen=True)
class Split:
    """Replicas per type (the fleet's order), and why."""

    replicas: tuple[int, ...]
    starved: tuple[str, ...]
    held: tuple[str, ...]  # types kept above their share until replacements are ready
    message: str


def units(variants: Sequence[Variant], replicas: Sequence[int]) -> float:
    """Capacity of `replicas` (one count per type) in primary-replica units."""
    return sum(v.weight * n for v, n in zip(variants, replicas, strict=True))


def ready_units(variants: Sequence[Variant]) -> float:
    return sum(v.weight * v.ready for v in variants)


def starved(variant: Variant, *, fallback_after_seconds: float) -> bool:
    """Whether the scheduler has refused this type's new pods for long enough."""
    return variant.unschedulable > 0 and variant.unschedulable_seconds >= fallback_after_seconds


def hourly_cost(variants: Sequence[Variant]) -> float:
    """What the placed pods cost an hour (an unschedulable pod runs nowhere and costs nothing)."""
    return sum(v.cost_per_hour * v.placed for v in variants)


def split(variants: Sequence[Variant], wanted_units: int, *, strategy: Strategy,
          fallback_after_seconds: float) -> Split:
    """Replicas per type that carry `wanted_units`, under the starved and move-back rules."""
    if not variants:
        raise ValueError("a fleet has at least its primary type")
    hungry = [starved(v, fallback_after_seconds=fallback_after_seconds) for v in variants]
    caps = [min(v.max_replicas, v.placed) if h else v.max_replicas
            for v, h in zip(variants, hungry, strict=True)]
    order = _order(variants, strategy)
    counts = _fill(variants, caps, order, wanted_units, cheapest=strategy is Strategy.CHEAPEST)
    counts = _probe(variants, hungry, counts)
    counts, held = _hold(variants, counts, wanted_units, order)
    names = tuple(v.key for v, h in zip(variants, hungry, strict=True) if h)
    return Split(tuple(counts), names, held, _message(variants, counts, wanted_units, names, held))


def _order(variants: Sequence[Variant], strategy: Strategy) -> list[int]:
    indices = list(range(len(variants)))
    if strategy is Strategy.CHEAPEST:
        # Ties keep the spec's order (the primary first).
        indices.sort(key=lambda i: (variants[i].cost_per_unit, i))
    return indices


def _fill(variants: Sequence[Variant], caps: Sequence[int], order: Sequence[int],
          wanted: int, *, cheapest: bool) -> list[int]:
    counts = [0] * len(variants)
    left = float(wanted)
    for position, i in enumerate(order):
        if left <= 1e-9:
            break
        v = variants[i]
        whole = min(caps[i], int(left / v.weight + 1e-9))
        counts[i] = whole
        left -= whole * v.weight
        if left <= 1e-9 or whole == caps[i]:
            continue
        # A share smaller than one replica of this type: here, or, for the cheapest, on
        # whichever later type carries it for the least.
        best = i
        if cheapest:
            later = [j for j in order[position:] if counts[j] < caps[j]]
            best = min(later, key=lambda j: (math.ceil(left / variants[j].weight - 1e-9)
                                             * variants[j].cost_per_hour, order.index(j)))
        extra = min(caps[best] - counts[best], math.ceil(left / variants[best].weight - 1e-9))
        counts[best] += extra
        left -= extra * variants[best].weight
    return counts


def _probe(variants: Sequence[Variant], hungry: Sequence[bool], counts: list[int]) -> list[int]:
    """A starved type that would take more if it could keeps one pod asking for a node."""
    out = list(counts)
    for i, (v, h) in enumerate(zip(variants, hungry, strict=True)):
        if h and out[i] == v.placed and v.placed < v.max_replicas:
            out[i] = min(v.max_replicas, v.placed + PROBE_PODS)
    return out


def _surviving(variants: Sequence[Variant], counts: Sequence[int]) -> float:
    """Ready units left after the change (a scale-down removes pods not ready first)."""
    return sum(v.weight * min(v.ready, n) for v, n in zip(variants, counts, strict=True))


def _hold(variants: Sequence[Variant], counts: list[int], wanted: int,
          order: Sequence[int]) -> tuple[list[int], tuple[str, ...]]:
    """Undo scale-downs, latest type first, while ready capacity would fall below need."""
    keep = min(float(wanted), ready_units(variants))
    out = list(counts)
    held = []
    for i in reversed(order):
        v = variants[i]
        while out[i] < v.replicas and _surviving(variants, out) < keep - 1e-9:
            if out[i] < v.ready:
                out[i] += 1
                if v.key not in held:
                    held.append(v.key)
            else:
                break
    return out, tuple(held)


def _message(variants: Sequence[Variant], counts: Sequence[int], wanted: int,
             hungry: Sequence[str], held: Sequence[str]) -> str:
    mix = ", ".join(f"{n} x {v.key}" for v, n in zip(variants, counts, strict=True) if n)
    text = f"{wanted} units as {mix or 'no replicas'} ({units(variants, counts):.1f} units)"
    if hungry:
        text += f"; unschedulable for long enough: {', '.join(hungry)}"
    if held:
        text += f"; kept until replacements are ready: {', '.join(held)}"
    return text
