"""From LanguageModelDeployment and Pod bodies to what the fleet needs. Pure.

A deployment's engine model comes from the operator's own planning (`desired_state`, then
`replica_performance` of its capacity plan), so a simulated replica is as fast as the plan
the operator scales by. Deployments with an invalid spec or a plan that does not fit have
no pods to play and are left out; so are pods whose deployment is not listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from lmscale.controller.desired import Desired, desired_state
from lmscale.planner.performance import ReplicaPerformance, replica_performance
from lmscale.planner.plan import CapacityPlan
from lmscale.render.meta import DEPLOYMENT_LABEL, VARIANT_LABEL
from lmscale.sim.serve.engines import ENGINES
from lmscale.sim.serve.fleet import DeploymentInfo, PodInfo

Body = Mapping[str, Any]
# engine, model, GPU name, GPUs, perf, and (type, GPU name, GPUs, perf) per fallback type
_Variant = tuple[str, str, int, ReplicaPerformance]
_Template = tuple[str, str, str, int, ReplicaPerformance, tuple[_Variant, ...]]


class Planner:
    """Plans each LanguageModelDeployment once per generation: planning is not free."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str, str, int], _Template | None] = {}

    def template(self, lmd: Body) -> _Template | None:
        meta = lmd.get("metadata") or {}
        key = (
            str(meta.get("namespace", "")),
            str(meta.get("name", "")),
            str(meta.get("uid", "")),
            int(meta.get("generation") or 0),
        )
        if key not in self._cache:
            self._cache = {k: v for k, v in self._cache.items() if k[:2] != key[:2]}
            self._cache[key] = _plan(lmd)
        return self._cache[key]


def deployments(lmds: Iterable[Body], pods: Iterable[Body], planner: Planner
                ) -> list[DeploymentInfo]:
    """One `DeploymentInfo` per playable LanguageModelDeployment, with its listed pods."""
    by_owner: dict[tuple[str, str], list[PodInfo]] = {}
    for pod in pods:
        owner, info = pod_info(pod)
        if owner is not None and info is not None:
            by_owner.setdefault(owner, []).append(info)
    out = []
    for lmd in lmds:
        meta = lmd.get("metadata") or {}
        template = planner.template(lmd)
        if template is None:
            continue
        engine, model, gpu_model, gpus, perf, variants = template
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        out.append(DeploymentInfo(
            namespace=key[0], name=key[1], engine=engine, model=model, gpu_model=gpu_model,
            gpus_per_replica=gpus, perf=perf,
            pods=tuple(sorted(by_owner.get(key, []), key=lambda p: p.name)),
            variants=variants,
        ))
    return out


def pod_info(pod: Body) -> tuple[tuple[str, str] | None, PodInfo | None]:
    """The pod's deployment and its state; (None, None) for finished pods."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    owner = (meta.get("labels") or {}).get(DEPLOYMENT_LABEL)
    if not owner or status.get("phase") in ("Succeeded", "Failed"):
        return None, None
    ready = meta.get("deletionTimestamp") is None and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    node = str((pod.get("spec") or {}).get("nodeName") or "")
    variant = (meta.get("labels") or {}).get(VARIANT_LABEL)
    return (str(meta.get("namespace", "")), str(owner)), PodInfo(str(meta["name"]), ready, node,
                                                                 variant)


def _plan(lmd: Body) -> _Template | None:
    try:
        desired = desired_state(lmd)
    except (KeyError, TypeError, ValueError):
        return None  # a body the operator could not serve either
    if not isinstance(desired, Desired) or not desired.plan.fits:
        return None
    spec = desired.lmd.spec
    engine = spec.engine.kind.value
    if engine not in ENGINES:
        return None
    plan = desired.plan
    variants = tuple((f.type, _dcgm_name(p), p.gpus_per_replica, replica_performance(p))
                     for f, p in zip(spec.accelerator.fallbacks, desired.fallback_plans,
                                     strict=True))
    return (engine, spec.model.name, _dcgm_name(plan), plan.gpus_per_replica,
            replica_performance(plan), variants)


def _dcgm_name(plan: CapacityPlan) -> str:
    return plan.gpu.product_label.replace("-", " ")  # DCGM's modelName spelling
