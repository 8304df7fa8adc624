"""A fleet over GPU types: capacity units, the starved-type rule, the move back, cheapest."""

from __future__ import annotations

import pytest

from lmscale.policy import fleet
from lmscale.policy.fleet import Strategy, Variant

AFTER = 60.0


def h100(**kw: object) -> Variant:
    return Variant("nvidia-h100-80gb", weight=1.0, cost_per_hour=4.0, max_replicas=8,
                   **kw)  # type: ignore[arg-type]


def a100(**kw: object) -> Variant:
    # One A100 replica carries half of what one H100 replica carries at the SLO.
    return Variant("nvidia-a100-80gb", weight=0.5, cost_per_hour=1.5, max_replicas=16,
                   **kw)  # type: ignore[arg-type]


def _split(variants: list[Variant], wanted: int,
           strategy: Strategy = Strategy.ORDERED) -> fleet.Split:
    return fleet.split(variants, wanted, strategy=strategy, fallback_after_seconds=AFTER)


# --- capacity units ---------------------------------------------------------------------

def test_replicas_of_each_type_count_by_their_weight() -> None:
    assert fleet.units([h100(), a100()], [2, 3]) == pytest.approx(3.5)
    assert fleet.ready_units([h100(ready=2), a100(ready=4)]) == pytest.approx(4.0)


@pytest.mark.parametrize(("wanted", "expected"), [
    pytest.param(0, (0, 0), id="nothing"),
    pytest.param(3, (3, 0), id="all-on-the-primary"),
    pytest.param(8, (8, 0), id="up-to-the-primary-cap"),
    pytest.param(9, (8, 2), id="beyond-the-cap-in-fallback-units"),
    pytest.param(11, (8, 6), id="three-units-are-six-a100s"),
])  # fmt: skip
def test_ordered_fills_the_primary_first(wanted: int, expected: tuple[int, int]) -> None:
    assert _split([h100(), a100()], wanted).replicas == expected


def test_a_partial_unit_takes_a_whole_replica() -> None:
    third = Variant("nvidia-l40s", weight=0.4, cost_per_hour=1.0, max_replicas=10)
    split = _split([h100(replicas=1, ready=1), third], 2)
    assert split.replicas == (2, 0)
    starved = h100(replicas=2, ready=1, unschedulable=1, unschedulable_seconds=AFTER)
    split = _split([starved, third], 2)
    assert split.replicas == (2, 3)  # 1 H100 placed (+1 probe), 1 unit = 3 x 0.4


# --- the starved-type rule --------------------------------------------------------------

def test_unschedulable_for_less_than_fallback_after_waits_for_the_primary() -> None:
    primary = h100(replicas=4, ready=2, unschedulable=2, unschedulable_seconds=AFTER - 1)
    split = _split([primary, a100()], 4)
    assert split.replicas == (4, 0)
    assert split.starved == ()


def test_starved_primary_hands_the_missing_capacity_to_the_fallback() -> None:
    primary = h100(replicas=4, ready=2, unschedulable=2, unschedulable_seconds=AFTER)
    split = _split([primary, a100()], 4)
    # 2 placed H100s carry 2 units; the other 2 go to 4 A100s; one H100 pod keeps asking.
    assert split.replicas == (3, 4)
    assert split.starved == ("nvidia-h100-80gb",)
    assert "unschedulable for long enough: nvidia-h100-80gb" in split.message


def test_a_starved_fallback_passes_on_to_the_next_type() -> None:
    primary = h100(replicas=2, ready=1, unschedulable=1, unschedulable_seconds=300)
    second = a100(replicas=2, ready=0, unschedulable=2, unschedulable_seconds=AFTER)
    l40s = Variant("nvidia-l40s", weight=0.25, cost_per_hour=1.0, max_replicas=10)
    split = _split([primary, second, l40s], 2)
    # H100: 1 placed + probe; A100: none placed, one probe; the missing unit: 4 L40S.
    assert split.replicas == (2, 1, 4)
    assert split.starved == ("nvidia-h100-80gb", "nvidia-a100-80gb")


def test_every_type_starved_keeps_probing_and_never_grows_without_bound() -> None:
    primary = h100(replicas=3, ready=0, unschedulable=3, unschedulable_seconds=AFTER)
    second = a100(replicas=2, ready=0, unschedulable=2, unschedulable_seconds=AFTER)
    assert _split([primary, second], 5).replicas == (1, 1)


def test_hourly_cost_counts_placed_pods_only() -> None:
    variants = [h100(replicas=3, ready=2, unschedulable=1), a100(replicas=4, ready=4)]
    assert fleet.hourly_cost(variants) == pytest.approx(2 * 4.0 + 4 * 1.5)


# --- the move back ----------------------------------------------------------------------

def test_preferred_capacity_back_keeps_the_fallback_until_replacements_are_ready() -> None:
    # The H100 pool freed up: the probe was placed, nothing unschedulable now.
    primary = h100(replicas=3, ready=2)
    fallback = a100(replicas=4, ready=4)
    split = _split([primary, fallback], 4)
    # The primary asks for all 4 units; the A100s stay while the H100s are not ready.
    assert split.replicas == (4, 4)
    assert split.held == ("nvidia-a100-80gb",)


def test_fallback_drains_as_the_replacements_become_ready() -> None:
    assert _split([h100(replicas=4, ready=3), a100(replicas=4, ready=4)], 4).replicas == (4, 2)
    assert _split([h100(replicas=4, ready=4), a100(replicas=2, ready=2)], 4).replicas == (4, 0)


@pytest.mark.parametrize("ready_primary", [0, 1, 2, 3, 4])
def test_moving_back_never_drops_ready_capacity(ready_primary: int) -> None:
    fallback = a100(replicas=4, ready=4)
    before = fleet.ready_units([h100(replicas=4, ready=ready_primary), fallback])
    split = _split([h100(replicas=4, ready=ready_primary), fallback], 4)
    kept = 1.0 * min(ready_primary, split.replicas[0]) + 0.5 * min(4, split.replicas[1])
    assert kept >= min(4, before)


def test_load_falling_drains_the_fallback_first() -> None:
    split = _split([h100(replicas=2, ready=2), a100(replicas=4, ready=4)], 2)
    assert split.replicas == (2, 0)
    assert split.held == ()


# --- cheapest ---------------------------------------------------------------------------

def test_cheapest_prefers_the_lowest_cost_per_unit() -> None:
    # A100: 1.5 / 0.5 = 3 per unit, H100: 4 per unit.
    assert _split([h100(), a100()], 4, Strategy.CHEAPEST).replicas == (0, 8)


def test_cheapest_respects_each_types_cap() -> None:
    capped = Variant("nvidia-a100-80gb", weight=0.5, cost_per_hour=1.5, max_replicas=4)
    assert _split([h100(), capped], 5, Strategy.CHEAPEST).replicas == (3, 4)


def test_cheapest_puts_a_remainder_where_it_costs_least() -> None:
    big = Variant("big", weight=1.0, cost_per_hour=2.9, max_replicas=2)  # 2.9 per unit
    mid = Variant("mid", weight=0.75, cost_per_hour=2.3, max_replicas=4)  # 3.07 per unit
    small = Variant("small", weight=0.25, cost_per_hour=0.8, max_replicas=8)  # 3.2 per unit
    split = _split([small, mid, big], 3, Strategy.CHEAPEST)
    # 2 big, 1 mid, and the last quarter unit on one small (0.8) rather than a mid (2.3).
    assert split.replicas == (1, 1, 2)
    assert fleet.units([small, mid, big], split.replicas) == pytest.approx(3.0)


def test_cheapest_still_falls_back_from_a_starved_type() -> None:
    cheap = a100(replicas=8, ready=2, unschedulable=6, unschedulable_seconds=AFTER)
    assert _split([h100(), cheap], 4, Strategy.CHEAPEST).replicas == (3, 3)
