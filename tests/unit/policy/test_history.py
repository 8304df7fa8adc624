"""Scaling history survives a restart as JSON."""

from __future__ import annotations

import pytest

from lmscale.policy import Recommendation, ScaleEvent, ScalingHistory, decide

from .builders import make_observation, make_spec


def test_json_round_trip() -> None:
    history = ScalingHistory(
        recommendations=(Recommendation(1.5, 3), Recommendation(11.5, 4)),
        scale_events=(ScaleEvent(11.5, 3, 4),),
        learned_startup_seconds=140.0,
        last_active_time=11.5,
        missing_cycles=2,
        guard_waiting=17.0,
        guard_until=71.5,
        loads=((1.5, 30.0), (11.5, 41.0)),
        backlog_holders=3,
        backlog_until=86.5,
    )
    assert ScalingHistory.from_json(history.to_json()) == history


def test_the_backlog_state_is_written_only_while_there_is_one() -> None:
    assert '"backlog"' not in ScalingHistory().to_json()
    after = ScalingHistory(backlog_until=86.5)  # the holders are gone, the latencies not yet
    assert ScalingHistory.from_json(after.to_json()) == after


def test_decisions_survive_a_restart() -> None:
    """Replaying through JSON gives the same decisions as keeping the object."""
    spec, kept, restored = make_spec(), ScalingHistory(), ScalingHistory()
    for cycle, running in enumerate([40, 90, 90, 20, 20, 20, 20]):
        observation = make_observation(running=float(running))
        a = decide(spec, observation, kept, now=100.0 * cycle)
        b = decide(
            spec, observation, ScalingHistory.from_json(restored.to_json()), now=100.0 * cycle
        )
        assert (a.replicas, a.reason) == (b.replicas, b.reason)
        kept, restored = a.history, b.history


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("not json", id="not-json"),
        pytest.param('{"v": 99}', id="unknown-version"),
        pytest.param('{"v": 1, "recs": [[1]]}', id="short-entry"),
        pytest.param('{"v": 1, "startup": [1]}', id="wrong-type"),
    ],
)
def test_malformed_history_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        ScalingHistory.from_json(text)
