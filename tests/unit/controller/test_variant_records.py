"""Pods and Deployments of fallback GPU types, as the indexes keep them."""

from __future__ import annotations

from datetime import UTC, datetime

from lmscale.controller.pods import summarize
from lmscale.handlers.indexes import deployment_record, split_deployments


def _deployment(name: str, variant: str | None = None) -> dict[str, object]:
    labels = {"lmscale.dev/deployment": "chat"}
    if variant:
        labels["lmscale.dev/variant"] = variant
    return {"metadata": {"name": name, "namespace": "a", "labels": labels},
            "spec": {"replicas": 2}}


def test_the_primary_record_is_told_apart_from_the_fallbacks() -> None:
    records = [deployment_record(_deployment("chat-nvidia-a100-80gb", "nvidia-a100-80gb")),
               deployment_record(_deployment("chat"))]
    primary, fallbacks = split_deployments(records)
    assert primary is not None and primary["metadata"]["name"] == "chat"
    assert "labels" not in primary["metadata"]  # a primary's record is as it always was
    assert list(fallbacks) == ["nvidia-a100-80gb"]
    assert split_deployments(records[:1])[0] is None


def test_a_pod_knows_its_type_and_since_when_it_is_refused() -> None:
    pod = summarize({
        "metadata": {"name": "p", "namespace": "a", "creationTimestamp": "2026-01-01T00:00:00Z",
                     "labels": {"lmscale.dev/variant": "nvidia-a100-80gb"}},
        "status": {"conditions": [{"type": "PodScheduled", "status": "False",
                                   "reason": "Unschedulable", "message": "0/2 nodes",
                                   "lastTransitionTime": "2026-01-01T00:00:05Z"}]}})
    assert pod.variant == "nvidia-a100-80gb"
    assert pod.unschedulable_since == datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    placed = summarize({"metadata": {"name": "q", "namespace": "a"}, "status": {}})
    assert placed.variant is None and placed.unschedulable_since is None
