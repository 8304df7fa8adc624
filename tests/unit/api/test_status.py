"""Status helpers: conditions keep their transition time while their status holds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lmscale import api

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)


def _ready(status: api.ConditionStatus, reason: api.ConditionReason, at: datetime) -> api.Condition:
    return api.Condition(
        type=api.ConditionType.READY, status=status, reason=reason, message="m",
        last_transition_time=at,
    )  # fmt: skip


S, R = api.ConditionStatus, api.ConditionReason
CASES = [
    pytest.param(S.TRUE, R.AVAILABLE, T0, id="same-status-keeps-time"),
    pytest.param(S.FALSE, R.REPLICAS_NOT_READY, T1, id="new-status-new-time"),
]


@pytest.mark.parametrize(("status", "reason", "expected_time"), CASES)
def test_set_condition_transition_time(
    status: api.ConditionStatus, reason: api.ConditionReason, expected_time: datetime
) -> None:
    old = [_ready(api.ConditionStatus.TRUE, api.ConditionReason.AVAILABLE, T0)]
    (new,) = api.set_condition(old, _ready(status, reason, T1))
    assert new.last_transition_time == expected_time
    assert new.reason == reason


def test_set_condition_appends_and_keeps_order() -> None:
    degraded = api.Condition(
        type=api.ConditionType.DEGRADED, status=api.ConditionStatus.FALSE,
        reason=api.ConditionReason.AS_EXPECTED, last_transition_time=T0,
    )  # fmt: skip
    ready = _ready(api.ConditionStatus.TRUE, api.ConditionReason.AVAILABLE, T0)
    conditions = api.set_condition([degraded], ready)
    assert [c.type for c in conditions] == [api.ConditionType.DEGRADED, api.ConditionType.READY]
    assert api.find_condition(conditions, api.ConditionType.READY) == ready
    assert api.find_condition(conditions, api.ConditionType.SCHEDULABLE) is None


def test_status_wire_form() -> None:
    status = api.Status(
        observed_generation=2,
        conditions=[_ready(api.ConditionStatus.TRUE, api.ConditionReason.AVAILABLE, T0)],
        desired_replicas=3,
        selector="lmscale.dev/deployment=chat",
        metrics=api.Metrics(waiting=4.0, observed_at=T1),
        last_scale_time=T1,
    )
    wire = status.to_dict()
    assert wire["conditions"][0] == {
        "type": "Ready", "status": "True", "reason": "Available", "message": "m",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }  # fmt: skip
    assert wire["metrics"] == {"waiting": 4.0, "observedAt": "2026-01-01T00:05:00Z"}
    assert wire["lastScaleTime"] == "2026-01-01T00:05:00Z"
    assert api.Status.model_validate(wire) == status


def test_every_reason_is_a_valid_condition_reason() -> None:
    """metav1.Condition's reason pattern, which the CRD enforces too."""
    for reason in api.ConditionReason:
        api.Condition(
            type=api.ConditionType.READY, status=api.ConditionStatus.UNKNOWN, reason=reason,
            last_transition_time=T0,
        )  # fmt: skip
