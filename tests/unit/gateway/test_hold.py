"""The hold queue's decisions: forward, hold or refuse, and what a refusal says."""

from __future__ import annotations

import pytest

from lmscale.gateway import hold
from lmscale.gateway.hold import HoldSettings, Outcome, Rejection

SETTINGS = HoldSettings(capacity=2, timeout_s=60)

ADMIT = [
    pytest.param(1, 0, Outcome.FORWARD, id="ready-backend-forwards"),
    pytest.param(3, 5, Outcome.FORWARD, id="ready-backend-forwards-even-with-a-queue"),
    pytest.param(0, 0, Outcome.HOLD, id="none-ready-holds"),
    pytest.param(0, 1, Outcome.HOLD, id="last-slot-holds"),
    pytest.param(0, 2, Outcome.REJECT_FULL, id="full-queue-rejects"),
]  # fmt: skip


@pytest.mark.parametrize(("ready", "waiting", "expected"), ADMIT)
def test_admit(ready: int, waiting: int, expected: Outcome) -> None:
    assert hold.admit(ready_backends=ready, waiting=waiting, settings=SETTINGS) is expected


def test_a_zero_capacity_queue_rejects_at_once() -> None:
    settings = HoldSettings(capacity=0, timeout_s=1)
    assert hold.admit(ready_backends=0, waiting=0, settings=settings) is Outcome.REJECT_FULL


def test_remaining_counts_down_to_zero_and_stays() -> None:
    assert hold.remaining(arrived_s=100, now_s=100, settings=SETTINGS) == 60
    assert hold.remaining(arrived_s=100, now_s=130, settings=SETTINGS) == 30
    assert hold.remaining(arrived_s=100, now_s=200, settings=SETTINGS) == 0


RETRY = [
    pytest.param(Rejection.QUEUE_FULL, 60, 6, id="a-tenth-of-the-timeout"),
    pytest.param(Rejection.TIMEOUT, 1, 1, id="at-least-one-second"),
    pytest.param(Rejection.TIMEOUT, 900, 30, id="at-most-thirty-seconds"),
    pytest.param(Rejection.SHUTDOWN, 900, 1, id="shutdown-retries-at-once-elsewhere"),
]  # fmt: skip


@pytest.mark.parametrize(("reason", "timeout", "expected"), RETRY)
def test_retry_after(reason: Rejection, timeout: float, expected: int) -> None:
    assert hold.retry_after(reason, HoldSettings(timeout_s=timeout)) == expected


def test_pick_takes_the_least_loaded_backend_first_on_ties() -> None:
    assert hold.pick([3, 1, 1, 2]) == 1
    assert hold.pick([0]) == 0
    assert hold.pick([]) is None


@pytest.mark.parametrize(("capacity", "timeout", "field"), [
    pytest.param(-1, 1.0, "capacity", id="negative-capacity"),
    pytest.param(1, 0.0, "timeout", id="zero-timeout"),
])  # fmt: skip
def test_bad_settings_name_the_field(capacity: int, timeout: float, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        HoldSettings(capacity=capacity, timeout_s=timeout)


def test_a_weighted_pick_goes_by_in_flight_relative_to_capacity() -> None:
    # Fewest in flight is the slow backend; relative to capacity the fast one has more room.
    assert hold.pick([20, 10], [30.0, 10.0]) == 0
    assert hold.pick([20, 10]) == 1
    # An idle fleet fills its largest backend first; equal shares go to the first.
    assert hold.pick([0, 0, 0], [10.0, 30.0, 30.0]) == 1
    assert hold.pick([2, 8], [10.0, 30.0]) == 0  # 3/10 = 9/30
    assert hold.pick([], []) is None


def test_a_weighted_pick_spreads_in_flight_in_proportion() -> None:
    in_flight = [0, 0, 0]
    for _ in range(50):
        index = hold.pick(in_flight, [30.0, 10.0, 10.0])
        assert index is not None
        in_flight[index] += 1
    assert in_flight == [30, 10, 10]


@pytest.mark.parametrize("capacity", [1.0, 30.0, 0.3])
def test_equal_capacities_pick_what_fewest_in_flight_picks(capacity: float) -> None:
    loads = [[3, 1, 1, 2], [0, 0], [5], [7, 2, 9, 2, 0, 0, 4], [4, 4, 4]]
    for in_flight in loads:
        assert hold.pick(in_flight, [capacity] * len(in_flight)) == hold.pick(in_flight)


def test_a_pick_needs_one_capacity_per_backend() -> None:
    with pytest.raises(ValueError, match="2 backends but 1 capacities"):
        hold.pick([1, 2], [1.0])
