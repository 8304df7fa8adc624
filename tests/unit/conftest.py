"""Unit-test settings shared by every package."""

from __future__ import annotations

import pytest

from lmscale.planner import auto


@pytest.fixture(autouse=True)
def _degree_choice_by_estimate(request: pytest.FixtureRequest,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    """`gpusPerReplica: auto` calibrates its runners-up, seconds of CPU each. Tests that are
    not about that choice rank degrees by the planner's mean-latency estimate instead; the
    ones that are carry `@pytest.mark.calibrated` and run the real calibrations."""
    if request.node.get_closest_marker("calibrated") is None:
        monkeypatch.setattr(auto, "calibrated_rps", auto.estimated_rps)
        monkeypatch.setattr(auto, "_pending", lambda *_: [])  # nothing to wait for, then
