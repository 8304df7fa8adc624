"""The PodDisruptionBudget: node drains take replicas one at a time."""

from __future__ import annotations

from typing import Any

from lmscale.api import LanguageModelDeployment, LanguageModelDeploymentSpec
from lmscale.render import meta


def max_replicas(spec: LanguageModelDeploymentSpec) -> int:
    """The most replicas the deployment can have: the scaling bound, or spec.replicas."""
    return spec.scaling.max_replicas if spec.scaling.enabled else spec.replicas


def render_pdb(lmd: LanguageModelDeployment) -> dict[str, Any] | None:
    """A budget of one unavailable replica, or None when there can be only one replica.

    With a single replica, `maxUnavailable: 1` would protect nothing and `0` would block
    every node drain, so no budget at all is the honest choice (the caller deletes it).
    """
    if max_replicas(lmd.spec) <= 1:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta.metadata(lmd),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": meta.selector_labels(lmd.name)},
            # A replica stuck loading or crash-looping must not block a drain.
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
