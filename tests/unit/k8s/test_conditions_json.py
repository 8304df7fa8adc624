"""Conditions as status holds them: a transition time moves only with the status."""

from datetime import UTC, datetime

from lmscale.api.status import ConditionReason, ConditionType
from lmscale.controller.conditions import condition
from lmscale.k8s.reconcile import conditions_json

EARLIER = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 1, 2, tzinfo=UTC)


def _written(status: bool | None, *, kind: ConditionType = ConditionType.READY) -> dict:
    (body,) = conditions_json([], [condition(kind, status, ConditionReason.SCALING, "m",
                                             now=EARLIER, generation=1)])
    return body


def test_an_unchanged_status_keeps_its_transition_time_and_a_changed_one_moves() -> None:
    old = [_written(True), _written(False, kind=ConditionType.DEGRADED)]
    new = [condition(ConditionType.DEGRADED, True, ConditionReason.SCALING, "now degraded",
                     now=NOW, generation=2),
           condition(ConditionType.READY, True, ConditionReason.SCALING, "still ready",
                     now=NOW, generation=2)]
    ready, degraded = conditions_json(old, new)  # in the order status already had
    assert (ready["type"], ready["message"]) == ("Ready", "still ready")
    assert ready["lastTransitionTime"] == old[0]["lastTransitionTime"]
    assert ready["observedGeneration"] == 2
    assert degraded["lastTransitionTime"] != old[1]["lastTransitionTime"]
    assert degraded["lastTransitionTime"].startswith("2026-01-02")


def test_types_not_asked_for_are_left_out_and_new_ones_come_last() -> None:
    old = [_written(True, kind=ConditionType.DEGRADED), _written(True)]
    new = [condition(ConditionType.SCHEDULABLE, True, ConditionReason.SCALING, "m", now=NOW,
                     generation=1),
           condition(ConditionType.READY, True, ConditionReason.SCALING, "m", now=NOW,
                     generation=1)]
    assert [c["type"] for c in conditions_json(old, new)] == ["Ready", "Schedulable"]
