"""The scaler's Events are created through the same resource table as every other object."""

from __future__ import annotations

from datetime import UTC, datetime

from lmscale.k8s import events, resources


def test_event_bodies_map_to_the_events_resource() -> None:
    lmd = {"apiVersion": "lmscale.dev/v1alpha1", "kind": "LanguageModelDeployment",
           "metadata": {"name": "chat", "namespace": "team-a", "uid": "u"}}
    body = events.event_body(lmd, type_="Normal", reason="Scaled", message="scaled 1 -> 2",
                             now=datetime(2026, 1, 1, tzinfo=UTC))
    assert resources.of(body) is resources.EVENTS
