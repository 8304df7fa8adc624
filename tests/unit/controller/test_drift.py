"""Drift correction compares what lmscale renders with what the apiserver shows: a child as
the apiserver stores it (defaults added, quantities as strings, empty fields left out) is
not drift; a hand edit is."""

from __future__ import annotations

import copy
from typing import Any

from tests.unit.api.malformed import valid_body

from lmscale.controller.desired import Desired, desired_state
from lmscale.handlers.drift import contains


def _stored(rendered: Any) -> Any:
    """`rendered` as the apiserver gives it back: empty values gone, numbers as strings."""
    if isinstance(rendered, dict):
        return {k: _stored(v) for k, v in rendered.items() if v not in (None, [], {})}
    if isinstance(rendered, list):
        return [_stored(v) for v in rendered]
    if isinstance(rendered, int | float) and not isinstance(rendered, bool):
        return str(rendered)
    return rendered


def _deployment() -> dict[str, Any]:
    body = valid_body()
    body["metadata"].update({"namespace": "team-a", "uid": "u-1", "generation": 1})
    desired = desired_state(body)
    assert isinstance(desired, Desired)
    return next(m for m in desired.manifests if m["kind"] == "Deployment")


def test_a_child_as_stored_is_not_drift() -> None:
    rendered = _deployment()
    container = rendered["spec"]["template"]["spec"]["containers"][0]
    container.setdefault("env", [])  # rendered empty, as for a model without settings
    live = _stored(rendered)
    live["spec"]["template"]["spec"].setdefault("dnsPolicy", "ClusterFirst")  # a default
    assert "env" not in live["spec"]["template"]["spec"]["containers"][0]
    assert contains(live, rendered)


def test_a_hand_edit_is_drift() -> None:
    rendered = _deployment()
    live = _stored(copy.deepcopy(rendered))
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "someone/else:latest"
    assert not contains(live, rendered)
    emptied = _stored(copy.deepcopy(rendered))
    del emptied["spec"]["template"]["spec"]["containers"][0]["image"]
    assert not contains(emptied, rendered)  # only empty values may be missing
