"""Wait until the indexes hold what the apiserver lists (client-go's WaitForCacheSync)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import kopf

from lmscale.handlers.indexes import Index
from lmscale.handlers.names import CHILD_SELECTOR
from lmscale.k8s import resources
from lmscale.k8s.client import Kube
from lmscale.settings import OperatorSettings

_KINDS = {"lmds": (resources.LMDS, None),
          "deployments": (resources.DEPLOYMENTS, CHILD_SELECTOR),
          "pods": (resources.PODS, CHILD_SELECTOR)}


def _listed(kube: Kube, settings: OperatorSettings) -> dict[str, int]:
    namespaces: tuple[str | None, ...] = settings.kopf.watch_namespaces or (None,)
    return {name: sum(kube.count(resource, namespace=ns, label_selector=selector)
                      for ns in namespaces)
            for name, (resource, selector) in _KINDS.items()}


def _indexed(indexes: Mapping[str, Index[Any, Any]]) -> dict[str, int]:
    return {name: index.objects() for name, index in indexes.items()}


async def wait_synced(kube: Kube, settings: OperatorSettings,
                      indexes: Mapping[str, Index[Any, Any]], *, timeout: float,
                      logger: kopf.Logger) -> bool:
    """True once every index holds at least as many objects as were listed at the start."""
    deadline = time.monotonic() + timeout
    try:
        listed = await asyncio.to_thread(_listed, kube, settings)
    except Exception as error:  # noqa: BLE001 - no count: the watches decide alone
        logger.warning("could not count objects before the first cycle: %s", error)
        return False
    while time.monotonic() < deadline:
        indexed = _indexed(indexes)
        if all(indexed[name] >= count for name, count in listed.items()):
            logger.info("indexes in sync: %s", indexed)
            return True
        await asyncio.sleep(0.2)
    logger.warning("indexes not in sync after %.0f s (%s of %s): scaling anyway",
                   timeout, _indexed(indexes), listed)
    return False
