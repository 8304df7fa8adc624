"""Who may write itself into the leader Lease (the pure half of leader election)."""

from __future__ import annotations

import pytest

from lmscale.k8s.lease import LeaseTiming, Record, may_take


@pytest.mark.parametrize(("holder", "unchanged_for", "expected"), [
    pytest.param("", 0.0, True, id="nobody-holds-it"),
    pytest.param("me", 0.0, True, id="we-hold-it"),
    pytest.param("other", 14.9, False, id="other-renewed-within-the-lease"),
    pytest.param("other", 15.0, True, id="other-silent-a-whole-lease"),
])
def test_may_take(holder: str, unchanged_for: float, expected: bool) -> None:
    record = Record(holder=holder, renew_time="2026-01-01T00:00:00.000000Z", transitions=0)
    assert may_take(record, identity="me", unchanged_for=unchanged_for,
                    lease_duration=15.0) is expected


def test_record_reads_a_lease_without_spec_as_free() -> None:
    assert Record.of({"metadata": {"name": "x"}}) == Record(holder="", renew_time="",
                                                            transitions=0)


@pytest.mark.parametrize("timing", [
    pytest.param((10.0, 10.0, 2.0), id="deadline-equals-lease"),
    pytest.param((15.0, 10.0, 10.0), id="retry-equals-deadline"),
    pytest.param((15.0, 10.0, 0.0), id="no-retry"),
])
def test_timing_keeps_the_holder_stopping_before_others_may_start(
        timing: tuple[float, float, float]) -> None:
    with pytest.raises(ValueError, match="lease_duration > renew_deadline > retry_period"):
        LeaseTiming(*timing)
