"""Which GPU type and tensor-parallel degree serve a load within an SLO most cheaply.

Mélange (Griggs et al. 2024, "Mélange: Cost Efficient Large Language Model Serving by
Exploiting GPU Heterogeneity") shows the cheapest GPU type depends on request sizes, rate and
SLO; this ranks every (GPU type, degree) pair that fits by the cost of the replicas the load
needs, and says why each of the others lost. (Mélange also mixes types in one fleet; this
picks one type per deployment, which is what one LanguageModelDeployment runs.)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from lmscale.planner import catalog, parallelism, performance, plan, slo


class _Request(Protocol):
    @property
    def arrival_s(self) -> float: ...
    @property
    def prompt_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...


@dataclasses.dataclass(frozen=True)
class Load:
    """A request rate and its mean token mix."""

    rate_rps: float
    mean_prompt_tokens: float
    mean_output_tokens: float

    @classmethod
    def from_requests(cls, requests: Sequence[_Request]) -> Load:
        """The mean rate and token mix of a trace (anything with arrival_s and token counts)."""
        if not requests:
            raise ValueError("an empty trace has no load")
        span = max(r.arrival_s for r in requests) - min(r.arrival_s for r in requests)
        count = len(requests)
        return cls(
            rate_rps=count / span if span > 0 else float(count),
            mean_prompt_tokens=sum(r.prompt_tokens for r in requests) / count,
            mean_output_tokens=sum(r.output_tokens for r in requests) / count,
        )


@dataclasses.dataclass(frozen=True)
class Objective:
    """The SLO: 95th-percentile time to first token and time per output token."""

    ttft_p95_s: float
    tpot_p95_s: float = math.inf


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A (GPU type, degree) that meets the SLO, and the fleet the load needs of it."""

    plan: plan.CapacityPlan
    replicas: int
    target_concurrency: float
    latency: slo.Latency
    reason: str = ""

    @property
    def cost_per_hour(self) -> float:
        return self.replicas * self.plan.cost_per_hour

    def to_dict(self) -> dict[str, Any]:
        """The plan's fields, with `cost_per_hour` for the whole fleet."""
        return {
            **self.plan.to_dict(),
            "replicas": self.replicas,
            "replica_cost_per_hour": self.plan.cost_per_hour,
            "cost_per_hour": self.cost_per_hour,
            "target_concurrency": self.target_concurrency,
            "ttft_seconds": self.latency.ttft_s,
            "tpot_seconds": self.latency.tpot_s,
            "requests_per_second_per_replica": self.latency.requests_per_second,
            "reason": self.reason,
        }


@dataclasses.dataclass(frozen=True)
class Rejection:
    gpu: str
    gpus_per_replica: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Recommendation:
    model: str
    context: int
    load: Load
    objective: Objective
    candidates: tuple[Candidate, ...]  # cheapest first
    rejected: tuple[Rejection, ...]

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    def to_dict(self) -> dict[str, Any]:
        tpot = self.objective.tpot_p95_s
        return {
            "model": self.model,
            "context": self.context,
            "load": dataclasses.asdict(self.load),
            "slo": {"ttft_p95_seconds": self.objective.ttft_p95_s,
                    "tpot_p95_seconds": None if math.isinf(tpot) else tpot},
            "candidates": [c.to_dict() for c in self.candidates],
            "rejected": [r.to_dict() for r in self.rejected],
        }


def _evaluate(
    capacity: plan.CapacityPlan, *, load: Load, objective: Objective, headroom: float
) -> Candidate | str:
    """A candidate, or why this replica shape cannot serve the load within the SLO."""
    if not capacity.fits:
        return capacity.reason or "does not fit"
    perf = performance.replica_performance(capacity)
    mix = dict(ttft_p95_s=objective.ttft_p95_s, tpot_p95_s=objective.tpot_p95_s,
               mean_prompt_tokens=load.mean_prompt_tokens,
               mean_output_tokens=load.mean_output_tokens, headroom=headroom)
    problem = slo.slo_problem(perf, **mix)
    if problem:
        return problem
    target = slo.target_concurrency(perf, **mix)
    latency = slo.latency_at(perf, concurrency=int(target),
                             mean_prompt_tokens=load.mean_prompt_tokens,
                             mean_output_tokens=load.mean_output_tokens)
    replicas = slo.replicas_for_load(perf, rate_rps=load.rate_rps, **mix)
    return Candidate(plan=capacity, replicas=replicas, target_concurrency=target,
                     latency=latency)


def _loser_reason(candidate: Candidate, best: Candidate) -> str:
    extra = candidate.cost_per_hour / best.cost_per_hour - 1 if best.cost_per_hour else 0.0
    return (
        f"${candidate.cost_per_hour:.2f}/h, {extra:.0%} more than {best.replicas} x "
        f"{best.plan.gpus_per_replica} {best.plan.gpu.key}: each replica carries "
        f"{candidate.target_concurrency:.0f} requests within the SLO "
        f"({candidate.latency.requests_per_second:.2f} req/s), so the load needs "
        f"{candidate.replicas} of them"
    )


def recommend(
    model: catalog.ModelArchitecture | str,
    *,
    load: Load,
    objective: Objective,
    context: int = plan.DEFAULT_CONTEXT,
    gpus: Iterable[catalog.GpuType | str] | None = None,
    dtype: str = "bfloat16",
    headroom: float = slo.DEFAULT_HEADROOM,
    known: catalog.Catalog | None = None,
    **plan_options: Any,
) -> Recommendation:
    """Rank every GPU type and valid tensor-parallel degree by the cost of serving `load`.

    `plan_options` go to `plan.plan_replica` (memory fraction, KV dtype, source, ...).
    """
    cat = known or catalog.default()
    arch = cat.model(model) if isinstance(model, str) else model
    cards = [cat.gpu(g) if isinstance(g, str) else g for g in (gpus or cat.gpus.values())]
    if load.rate_rps <= 0:
        raise ValueError("the request rate must be positive")
    candidates: list[Candidate] = []
    rejected: list[Rejection] = []
    for card in cards:
        degrees = parallelism.valid_tp_degrees(arch, card) or (1,)
        for tp in degrees:
            capacity = plan.plan_replica(arch, card, dtype=dtype, context=context,
                                         gpus_per_replica=tp, known=cat, **plan_options)
            outcome = _evaluate(capacity, load=load, objective=objective, headroom=headroom)
            if isinstance(outcome, str):
                rejected.append(Rejection(gpu=card.key, gpus_per_replica=tp, reason=outcome))
            else:
                candidates.append(outcome)
    candidates.sort(key=lambda c: (c.cost_per_hour, c.plan.gpus_per_replica, c.plan.gpu.key))
    ranked: list[Candidate] = []
    for index, candidate in enumerate(candidates):
        reason = (f"cheapest: {candidate.replicas} replica(s) of {candidate.plan.gpus_per_replica}"
                  f" x {candidate.plan.gpu.key} at ${candidate.cost_per_hour:.2f}/h"
                  if index == 0 else _loser_reason(candidate, candidates[0]))
        ranked.append(dataclasses.replace(candidate, reason=reason))
    return Recommendation(model=arch.key, context=context, load=load, objective=objective,
                          candidates=tuple(ranked), rejected=tuple(rejected))
