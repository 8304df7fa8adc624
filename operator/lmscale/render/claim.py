"""The PersistentVolumeClaim lmscale creates for `modelCache.size`."""

from __future__ import annotations

from typing import Any

from lmscale.api import LanguageModelDeployment
from lmscale.render import meta


def render_model_cache_claim(lmd: LanguageModelDeployment) -> dict[str, Any] | None:
    """The claim, or None when there is no cache or the user names an existing claim."""
    cache = lmd.spec.model_cache
    if cache is None or cache.size is None:
        return None
    spec: dict[str, Any] = {
        "accessModes": [cache.access_mode],
        "resources": {"requests": {"storage": str(cache.size)}},
    }
    if cache.storage_class_name:
        spec["storageClassName"] = cache.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": meta.metadata(lmd, name=meta.model_cache_claim_name(lmd.name)),
        "spec": spec,
    }
