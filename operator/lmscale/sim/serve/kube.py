"""The simulator's only Kubernetes I/O: list LanguageModelDeployments and their pods.

Polling, not watching: one list of each kind per period is cheap at the sizes the simulator
plays, and a poll that fails leaves the fleet as it was (the next one is the retry).
"""

from __future__ import annotations

from typing import Any

from lmscale.k8s import resources
from lmscale.k8s.client import Kube
from lmscale.render.meta import DEPLOYMENT_LABEL
from lmscale.sim.serve import inventory
from lmscale.sim.serve.fleet import DeploymentInfo


class ClusterSource:
    """Lists what the fleet should play, in some namespaces or all of them."""

    def __init__(self, kube: Kube, *, namespaces: tuple[str, ...] = ()) -> None:
        self._kube = kube
        self._namespaces: tuple[str | None, ...] = namespaces or (None,)
        self._planner = inventory.Planner()

    def poll(self) -> list[DeploymentInfo]:
        lmds: list[dict[str, Any]] = []
        pods: list[dict[str, Any]] = []
        for namespace in self._namespaces:
            lmds += self._kube.list(resources.LMDS, namespace=namespace)
            pods += self._kube.list(resources.PODS, namespace=namespace,
                                    label_selector=DEPLOYMENT_LABEL)
        return inventory.deployments(lmds, pods, self._planner)

    def close(self) -> None:
        self._kube.api.close()
