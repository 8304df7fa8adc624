"""One scaling cycle over every LanguageModelDeployment (the I/O half of the scaler).

Reads come from kopf's in-memory indexes (no list calls) and from Prometheus (one query per
metric for all deployments); writes are a server-side apply of `replicas` under the
scaler's field manager, pod-deletion-cost annotations before a scale-down, and a status
apply only when something other than the time of the reading changed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from lmscale import operator_metrics, render
from lmscale.api.plan_status import autoscaling_status
from lmscale.api.status import ConditionReason, ConditionType
from lmscale.controller import conditions
from lmscale.controller.desired import Invalid, Pending, Resolved, resolve
from lmscale.controller.pods import CAPACITY_ANNOTATION, DELETION_COST, PodInfo
from lmscale.k8s import reconcile, resources
from lmscale.k8s.client import SCALER_MANAGER, ApiException, Kube, namespace_gone
from lmscale.metrics import activator, objective, promql
from lmscale.metrics.client import PrometheusClient
from lmscale.metrics.reader import MetricsReader
from lmscale.metrics.results import MetricsSnapshot, Target
from lmscale.policy import (
    Decision,
    ScalingHistory,
    ScalingPolicySpec,
    decide,
    fleet,
    volatility,
)
from lmscale.render.activation import WAKE_ANNOTATION
from lmscale.scaler import drain, observe, pod_load, variants
from lmscale.scaler import policy_spec as policy_specs
from lmscale.scaler.policy_spec import calibration_ready, policy_spec
from lmscale.settings import OperatorSettings, activator_service

log = logging.getLogger(__name__)
Key = tuple[str, str]
# Post a Kubernetes Event: (object body, type, reason, message).
EventPoster = Callable[[Mapping[str, Any], str, str, str], None]


# Scaling history goes to status when the recommendation changes, on a scale event, and
# at least this often; a restarted operator loses at most this much of a steady run.
PERSIST_HISTORY_SECONDS = 30.0
WORKERS = 8
RECONCILE_GRACE_SECONDS = 60.0


@dataclasses.dataclass(frozen=True)
class KeptHistory:
    """The history as last persisted (parsed and as written) and when."""

    history: ScalingHistory
    recommendation: int
    persisted: dict[str, Any]
    persisted_at: float


@dataclasses.dataclass
class ScalerMemory:
    """What one operator process keeps between cycles; losing it on restart loses nothing
    that matters (scaling history lives in status, at most PERSIST_HISTORY_SECONDS old)."""

    last_cycle: datetime | None = None
    # Each resource's spec resolved, and the hash of its calibration inputs, by generation.
    desired: dict[tuple[str, int], Resolved | Invalid] = dataclasses.field(default_factory=dict)
    inputs: dict[tuple[str, int], str] = dataclasses.field(default_factory=dict)
    # Once a spec's calibration is at hand: the policy's settings and the published summary
    # (both fixed from then on; rebuilt each cycle they cost more than the decision).
    policies: dict[tuple[str, int], ScalingPolicySpec] = dataclasses.field(default_factory=dict)
    summaries: dict[tuple[str, int], dict[str, Any]] = dataclasses.field(default_factory=dict)
    # The scaler's part of each status as last written: the base for the next one, since
    # kopf's index may not show our own write yet when the next cycle starts.
    written: dict[Key, dict[str, Any]] = dataclasses.field(default_factory=dict)
    histories: dict[Key, KeptHistory] = dataclasses.field(default_factory=dict)
    # The history each resource's last decision returned (what the next one starts from).
    live: dict[Key, ScalingHistory] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class CycleReport:
    deployments: int
    scaled: int
    queries: int
    seconds: float


class Scaler:
    def __init__(self, *, kube: Kube, reader: MetricsReader, settings: OperatorSettings,
                 post_event: EventPoster, metrics: operator_metrics.OperatorMetrics,
                 prometheus: PrometheusClient | None = None) -> None:
        self.kube = kube
        self.reader = reader
        self.prometheus = prometheus
        self.settings = settings
        self.post_event = post_event
        self.metrics = metrics
        self.memory = ScalerMemory()

    def run_cycle(self, *, lmds: Mapping[Key, Mapping[str, Any]],
                  deployments: Mapping[Key, Mapping[str, Any]],
                  pods: Mapping[Key, Sequence[PodInfo]], now: datetime | None = None,
                  may_act: Callable[[], bool] = lambda: True,
                  variant_deployments: Mapping[Key, Mapping[str, Mapping[str, Any]]]
                  | None = None) -> CycleReport:
        """`may_act` is asked before each resource: False (leadership lost) stops writing.
        `deployments` are the primary types' Deployments; `variant_deployments` each
        resource's fallback types' Deployments by type."""
        variant_deployments = variant_deployments or {}
        started = time.perf_counter()
        now = now or datetime.now(UTC)
        outcomes = {key: self._desired(body) for key, body in lmds.items()}
        targets = [Target(ns, name, o.lmd.spec.engine.kind.value)
                   for (ns, name), o in outcomes.items()
                   if isinstance(o, Resolved) and o.lmd.spec.scaling.enabled]
        snapshot = self.reader.read(targets, now=now.timestamp()) if targets else None
        front = self._front_door(now) if targets else {}

        def one(key: Key) -> int:
            if not may_act():
                return 0
            if _awaiting_reconcile(lmds[key], now):
                return 0
            try:
                return self._one(key, lmds[key], outcomes[key], deployments.get(key),
                                 list(pods.get(key, ())), snapshot, now,
                                 variant_deployments.get(key) or {}, front.get(key))
            except Exception as error:  # noqa: BLE001 - one bad resource must not stop the rest
                if not (isinstance(error, ApiException) and namespace_gone(error)):
                    log.exception("scaling %s/%s failed; the next cycle retries", *key)
                return 0  # (a resource deleted while the cycle ran has nothing left to scale)

        def share(keys: list[Key]) -> int:
            return sum(one(key) for key in keys)

        # Deciding is cheap; the apiserver round-trips are not, so they overlap: each worker
        # takes an equal share (one task per resource cost more than most decisions).
        keys = list(lmds)
        with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="scaler") as pool:
            scaled = sum(pool.map(share, [keys[i::WORKERS] for i in range(WORKERS)]))
        self._forget_deleted(lmds)
        self.memory.last_cycle = now
        elapsed = time.perf_counter() - started
        self.metrics.cycle_duration.observe(elapsed)
        return CycleReport(len(lmds), scaled, snapshot.query_count if snapshot else 0, elapsed)

    def _front_door(self, now: datetime) -> dict[Key, activator.FrontDoor]:
        """The activator's held requests and arrival rates, when the chart installs one."""
        if self.prometheus is None or activator_service() is None:
            return {}
        ctx = promql.QueryContext.from_settings(self.settings.metrics,
                                                namespaces=self.settings.kopf.watch_namespaces)
        return activator.read(self.prometheus, ctx, now=now.timestamp())

    def _desired(self, body: Mapping[str, Any]) -> Resolved | Invalid | Pending:
        key = _spec_key(body)
        if key in self.memory.desired:
            return self.memory.desired[key]
        outcome = resolve(body, wait=False)  # one new spec never stalls the whole cycle
        if not isinstance(outcome, Pending):
            self.memory.desired[key] = outcome
        return outcome

    def _inputs(self, body: Mapping[str, Any], outcome: Resolved) -> str:
        key = _spec_key(body)
        if key not in self.memory.inputs:
            self.memory.inputs[key] = policy_specs.inputs_hash(outcome.lmd, outcome.plan)
        return self.memory.inputs[key]

    def _policy(self, body: Mapping[str, Any], outcome: Resolved) -> ScalingPolicySpec:
        """The policy's settings; asked only once the calibration is at hand."""
        key = _spec_key(body)
        if key not in self.memory.policies:
            self.memory.policies[key] = policy_spec(outcome.lmd, outcome.plan,
                                                    activator=activator_service() is not None)
        return self.memory.policies[key]

    def _summary(self, body: Mapping[str, Any], outcome: Resolved) -> dict[str, Any] | None:
        """`status.capacityPlan.autoscaling`; None while the calibration computes."""
        key = _spec_key(body)
        if key not in self.memory.summaries:
            summary = policy_specs.autoscaling_summary(outcome.lmd, outcome.plan,
                                                       inputs=self._inputs(body, outcome))
            if summary is None:
                return None
            self.memory.summaries[key] = autoscaling_status(summary)
        return self.memory.summaries[key]

    def _forget_deleted(self, lmds: Mapping[Key, Mapping[str, Any]]) -> None:
        live = {_spec_key(b) for b in lmds.values()}
        for generation in [g for g in self.memory.desired if g not in live]:
            del self.memory.desired[generation]
            self.memory.inputs.pop(generation, None)
            self.memory.policies.pop(generation, None)
            self.memory.summaries.pop(generation, None)
        for key in [k for k in self.memory.written if k not in lmds]:
            del self.memory.written[key]
            self.memory.histories.pop(key, None)
            self.memory.live.pop(key, None)
            self.metrics.forget(*key)

    def _one(self, key: Key, body: Mapping[str, Any], outcome: Resolved | Invalid | Pending,
             deployment: Mapping[str, Any] | None, pods: list[PodInfo],
             snapshot: MetricsSnapshot | None, now: datetime,
             variant_records: Mapping[str, Mapping[str, Any]] | None = None,
             front: activator.FrontDoor | None = None) -> int:
        variant_records = variant_records or {}
        status = dict(body.get("status") or {})
        previous = self.memory.written.get(key) or status
        generation = int(body["metadata"].get("generation", 0))
        current = int((deployment or {}).get("spec", {}).get("replicas") or 0)
        scaled = 0
        headroom: float | None = None
        extra: dict[str, Any] = {}
        # Asked first, whatever else holds the resource: a calibration persisted in status is
        # adopted before anything below (the published summary) could start computing it.
        calibrated = (isinstance(outcome, Resolved) and outcome.lmd.spec.scaling.enabled
                      and self._calibrated(body, outcome, status))
        if isinstance(outcome, Pending):
            desired = current  # a changed spec's new degree is not chosen yet
            metrics_condition = conditions.condition(
                ConditionType.METRICS_AVAILABLE, None, ConditionReason.CALIBRATING,
                f"{outcome.message}: replicas held", now=now, generation=generation)
        elif isinstance(outcome, Invalid) or deployment is None:
            desired = current
            metrics_condition = conditions.condition(
                ConditionType.METRICS_AVAILABLE, False, ConditionReason.METRICS_MISSING,
                "no replicas to read metrics from", now=now, generation=generation)
        elif not outcome.lmd.spec.scaling.enabled:
            desired = outcome.lmd.spec.replicas
            metrics_condition = conditions.condition(
                ConditionType.METRICS_AVAILABLE, None, ConditionReason.SCALING_DISABLED,
                "scaling.enabled is false: spec.replicas sets the replicas",
                now=now, generation=generation)
            if desired != current:
                self._scale(body, key, current, desired, pods, reason="SpecReplicas",
                            message=f"{current} -> {desired}: spec.replicas is {desired}",
                            now=now)
                scaled = 1
        elif not calibrated:
            desired = current
            metrics_condition = conditions.condition(
                ConditionType.METRICS_AVAILABLE, None, ConditionReason.CALIBRATING,
                "calibrating the per-replica target for this plan, SLO and token mix "
                "(about a second, once per spec): replicas held", now=now, generation=generation)
        else:
            assert snapshot is not None
            moves: list[tuple[str, int, int]] = []  # (Deployment, from, to), fleets only
            if outcome.fallback_plans:
                decision, fallback_after, moves, extra["fleet"] = self._decide_fleet(
                    key, body, outcome, status, deployment, variant_records, pods,
                    snapshot.get(*key), now, front=front, wake=_wake_time(body))
                current = sum(before for _, before, _ in moves)
                desired = sum(after for _, _, after in moves)
                changed = any(before != after for _, before, after in moves)
            else:
                decision, fallback_after = self._decide(
                    key, body, outcome, status, current, pods, snapshot.get(*key), now,
                    front=front, wake=_wake_time(body))
                desired = decision.replicas
                changed = desired != current
            headroom = volatility.headroom(decision.history.volatility)
            extra["scaling"] = self._keep_history(key, decision, status.get("scaling"),
                                                  scaled=changed, now=now,
                                                  missing_cap=fallback_after)
            availability = snapshot.availability(*key)
            metrics_condition = conditions.metrics_from_activator(
                spec_replicas=desired,
                ready_replicas=sum(1 for p in pods if p.ready and not p.terminating),
                held=front.held if front is not None else None,
                arrivals_per_second=front.arrivals_per_second if front is not None else None,
                now=now, generation=generation) or conditions.condition(
                ConditionType.METRICS_AVAILABLE, availability.available, availability.reason,
                availability.message, now=now, generation=generation)
            values = snapshot.get(*key)
            extra["metrics"] = {k: v for k, v in {
                "waiting": values.waiting, "running": values.running,
                "kvCacheUsage": values.kv_cache_usage,
                "ttftP95Seconds": values.ttft_p95_seconds,
                "tpotP95Seconds": values.tpot_p95_seconds,
                "gpuUtilization": values.gpu_utilization,
                "promptTokensPerSecond": values.prompt_tokens_per_second,
                "completionsPerSecond": values.completions_per_second}.items()
                if v is not None}
            direction = ("up" if desired > current else "down" if desired < current
                         else "none")
            self.metrics.record_decision(direction=direction, reason=decision.reason.value)
            if changed and moves:
                why = f"{decision.message}; {extra['fleet']['message']}"
                for name, before, after in moves:
                    if before != after:
                        self._scale(body, (key[0], name), before, after,
                                    [p for p in pods if _in(p, name, key[1])],
                                    reason=decision.reason.value,
                                    message=f"{name} {before} -> {after}: {why}", now=now)
                extra["lastScaleTime"] = now.isoformat().replace("+00:00", "Z")
                extra["lastScaleReason"] = f"scaled {extra['fleet']['types']}: {why}"
                scaled = 1
            elif changed:
                self._scale(body, key, current, desired, pods, reason=decision.reason.value,
                            message=decision.message, now=now)
                extra["lastScaleTime"] = now.isoformat().replace("+00:00", "Z")
                extra["lastScaleReason"] = f"scaled {decision.message}"
                scaled = 1
        spec = outcome.lmd.spec if isinstance(outcome, Resolved) else None
        workload = conditions.Workload(
            generation=generation, desired_replicas=desired, deployment=deployment, pods=pods,
            minimum_available=conditions.minimum_available(spec, desired))
        self.metrics.set_replicas(*key, desired=desired, current=current)
        if isinstance(outcome, Resolved) and outcome.lmd.spec.scaling.enabled:
            summary = self._summary(body, outcome)
            if summary is not None:
                extra["capacityPlan"] = {"autoscaling": summary}
            elif "capacityPlan" in previous:
                extra["capacityPlan"] = previous["capacityPlan"]  # kept while recomputing
        observed = extra.get("metrics") or {}
        self.metrics.observe_model(
            *key, ready_replicas=workload.ready_replicas,
            max_replicas=spec.scaling.max_replicas if spec else None,
            observed_waiting_requests=observed.get("waiting"),
            observed_ttft_p95_seconds=observed.get("ttftP95Seconds"),
            observed_gpu_utilization_ratio=observed.get("gpuUtilization"),
            slo_ttft_p95_seconds=spec.slo.ttft_p95_ms / 1000.0 if spec else None,
            metrics_available=1.0 if metrics_condition.status == "True" else 0.0,
            scaling_headroom_ratio=headroom,
            fleet_cost_per_hour=(variants.hourly_cost(outcome.lmd, outcome.plan,
                                                      outcome.fallback_plans, pods)
                                 if isinstance(outcome, Resolved) else None))
        self.metrics.set_ttft_objective(*key, le=objective.ttft_objective_le(
            spec.engine.kind.value, spec.slo.ttft_p95_ms / 1000.0) if spec else None)
        new = {
            "replicas": workload.replicas,
            "readyReplicas": workload.ready_replicas,
            "desiredReplicas": desired,
            "conditions": reconcile.conditions_json(
                previous.get("conditions") or [],
                [*conditions.workload_conditions(workload, now=now), metrics_condition]),
            **{k: previous[k] for k in ("lastScaleTime", "lastScaleReason") if k in previous},
            **extra,
        }
        self._write_status(key, body, new, now=now)
        return scaled

    def _calibrated(self, body: Mapping[str, Any], outcome: Resolved,
                    status: Mapping[str, Any]) -> bool:
        """Whether the calibration is at hand: computed in this process, or persisted in
        status for the same inputs (then adopted, not recomputed); else it starts."""
        lmd, plan = outcome.lmd, outcome.plan
        ready = False
        if lmd.spec.scaling.target_in_flight_per_replica is None:
            record = ((status.get("capacityPlan") or {}).get("autoscaling") or {}).get(
                "calibration")
            ready = policy_specs.adopt(lmd, plan, record, inputs=self._inputs(body, outcome))
        ready = ready or calibration_ready(lmd, plan)
        if ready and outcome.fallback_plans:
            # A mixed fleet weighs each type by its own calibration.
            return policy_specs.weights_ready(lmd, [plan, *outcome.fallback_plans])
        return ready

    def _decide(self, key: Key, body: Mapping[str, Any], desired: Resolved,
                status: Mapping[str, Any], current: int, pods: list[PodInfo], values: Any,
                now: datetime, *,
                front: activator.FrontDoor | None = None, wake: float | None = None
                ) -> tuple[Decision, int]:
        """The decision, and after how many missing cycles the policy falls back."""
        spec = self._policy(body, desired)
        live = self.memory.live.get(key)
        stored = status.get("scaling")
        if live is not None:
            history = live
        elif stored:
            history = ScalingHistory.from_json(json.dumps(stored))
        else:
            history = ScalingHistory()
        seen = observe.observation(spec_replicas=current, pods=pods, metrics=values, now=now,
                                   since=self.memory.last_cycle, front=front,
                                   wake_requested_at=wake)
        return decide(spec, seen, history, now=now.timestamp()), spec.fallback_after_cycles

    def _decide_fleet(self, key: Key, body: Mapping[str, Any], desired: Resolved,
                      status: Mapping[str, Any],
                      deployment: Mapping[str, Any] | None,
                      variant_records: Mapping[str, Mapping[str, Any]], pods: list[PodInfo],
                      values: Any, now: datetime, *, front: activator.FrontDoor | None = None,
                      wake: float | None = None
                      ) -> tuple[Decision, int, list[tuple[str, int, int]], dict[str, Any]]:
        """A fleet over several GPU types: `decide` in units of primary capacity, spread over
        the types by `policy.fleet.split`; the moves per Deployment and `status.fleet`."""
        lmd, plan = desired.lmd, desired.plan
        weights = policy_specs.capacity_weights(lmd, plan, desired.fallback_plans)
        members = variants.members(lmd, plan, desired.fallback_plans, weights)
        seen = [variants.variant(m, replicas=variants.replicas_of(m, deployment,
                                                                  variant_records),
                                 pods=pods, now=now)
                for m in members]
        spec = self._policy(body, desired)
        self._mark_capacity(key[0], variants.capacity_marks(pods, members,
                                                            spec.target_per_replica))
        history = self._history(key, status)
        per_pod = observe.observation(spec_replicas=sum(v.replicas for v in seen), pods=pods,
                                      metrics=values, now=now, since=self.memory.last_cycle,
                                      front=front, wake_requested_at=wake)
        accelerator = lmd.spec.accelerator
        after = float(accelerator.fallback_after_seconds)
        units = variants.unit_observation(per_pod, members, seen, pods, now,
                                          fallback_after_seconds=after)
        decision = decide(spec, units, history, now=now.timestamp())
        split = fleet.split(seen, decision.replicas,
                            strategy=fleet.Strategy(accelerator.strategy.value),
                            fallback_after_seconds=after)
        moves = [(m.deployment, v.replicas, n)
                 for m, v, n in zip(members, seen, split.replicas, strict=True)]
        cost = variants.hourly_cost(lmd, plan, desired.fallback_plans, pods)
        return (decision, spec.fallback_after_cycles, moves,
                variants.fleet_status(members, seen, split, cost_per_hour=cost))

    def _history(self, key: Key, status: Mapping[str, Any]) -> ScalingHistory:
        live = self.memory.live.get(key)
        if live is not None:
            return live
        stored = status.get("scaling")
        return ScalingHistory.from_json(json.dumps(stored)) if stored else ScalingHistory()

    def _keep_history(self, key: Key, decision: Decision, stored: Any, *, scaled: bool,
                      now: datetime, missing_cap: int) -> dict[str, Any]:
        """The history to put in status: the new one when something that steers a later
        decision changed (`_material`), or the load moved and the last write is
        PERSIST_HISTORY_SECONDS old; else the one written last, so an idle resource
        writes nothing (its history differs only in the times of repeated readings)."""
        kept = self.memory.histories.get(key)
        t = now.timestamp()
        if kept is None:
            previous = _parsed(stored)
            if previous is not None:
                kept = KeptHistory(previous, decision.recommendation, dict(stored), t)
        new = decision.history
        if (kept is None or scaled or decision.recommendation != kept.recommendation
                or _material(new, missing_cap) != _material(kept.history, missing_cap)
                or (t - kept.persisted_at >= PERSIST_HISTORY_SECONDS
                    and _load_values(new) != _load_values(kept.history))):
            persisted, persisted_at, base = json.loads(new.to_json()), t, new
        else:
            persisted, persisted_at, base = kept.persisted, kept.persisted_at, kept.history
        self.memory.histories[key] = KeptHistory(base, decision.recommendation, persisted,
                                                 persisted_at)
        self.memory.live[key] = new
        return persisted

    def _scale(self, body: Mapping[str, Any], key: Key, current: int, desired: int,
               pods: list[PodInfo], *, reason: str, message: str, now: datetime) -> None:
        namespace, name = key
        if desired < current:
            self._mark_least_loaded(namespace, pods, now=now)
        self.kube.apply(render.render_replicas(name, namespace, desired),
                        field_manager=SCALER_MANAGER)
        # `message` starts "from -> to: why", as the policy words it.
        self.post_event(body, "Normal", "Scaled" if reason != "SpecReplicas" else "Replicas",
                        f"scaled {message}")
        log.info("%s/%s scaled %d -> %d (%s): %s", namespace, name, current, desired,
                 reason, message)

    def _mark_capacity(self, namespace: str, marks: Mapping[str, str]) -> None:
        """Each pod of a mixed fleet says what it carries (`variants.capacity_marks`)."""
        for pod, text in marks.items():
            try:
                self.kube.merge_patch(resources.PODS, namespace=namespace, name=pod, patch={
                    "metadata": {"annotations": {CAPACITY_ANNOTATION: text}}})
            except Exception as error:  # noqa: BLE001 - a router weighs it 1 meanwhile
                log.warning("could not annotate pod %s/%s with its capacity: %s",
                            namespace, pod, error)

    def _mark_least_loaded(self, namespace: str, pods: list[PodInfo], *, now: datetime
                           ) -> None:
        load = (pod_load.pod_load(self.prometheus, namespace, self.settings.metrics,
                                  now=now.timestamp())
                if self.prometheus is not None else {})
        costs = drain.changed_costs(pods, drain.deletion_costs(pods, load))
        for pod, cost in costs.items():
            self.kube.merge_patch(resources.PODS, namespace=namespace, name=pod,
                                  patch={"metadata": {"annotations": {DELETION_COST: str(cost)}}})

    def _write_status(self, key: Key, body: Mapping[str, Any], status: dict[str, Any], *,
                      now: datetime) -> None:
        """Apply the scaler's part of status only when it changed: against the last write,
        or after a restart against what the resource shows (so a restart writes nothing
        either)."""
        before = self.memory.written.get(key)
        if before is None:
            before = _scalers_part(body.get("status") or {}, status)
        if _unchanged(before, status):
            self.memory.written[key] = status
            return
        if "metrics" in status:
            status["metrics"]["observedAt"] = now.isoformat().replace("+00:00", "Z")
        reconcile.write_workload_status(self.kube, body, status)
        self.memory.written[key] = status


def _spec_key(body: Mapping[str, Any]) -> tuple[str, int]:
    """A resource's spec as it stands: (uid, generation)."""
    meta = body["metadata"]
    return str(meta.get("uid")), int(meta.get("generation", 0))


def _awaiting_reconcile(body: Mapping[str, Any], now: datetime) -> bool:
    """A new resource the reconciler has not yet handled (no observedGeneration, created
    within RECONCILE_GRACE_SECONDS; its Deployment may already exist): its first scaler
    status would be rewritten a moment later, one more write and watch event per new
    resource. Past the grace period a reconciler that keeps failing leaves the scaler's
    conditions shown."""
    if "observedGeneration" in (body.get("status") or {}):
        return False
    raw = (body.get("metadata") or {}).get("creationTimestamp")
    try:
        age = (now - datetime.fromisoformat(str(raw).replace("Z", "+00:00"))).total_seconds()
    except (TypeError, ValueError):  # absent, or without a zone
        return False
    return 0 <= age < RECONCILE_GRACE_SECONDS


def _in(pod: PodInfo, deployment: str, name: str) -> bool:
    """Whether `pod` belongs to the Deployment `deployment` of the resource `name`."""
    own = name if pod.variant is None else render.variant_name(name, pod.variant)
    return own == deployment


def _wake_time(body: Mapping[str, Any]) -> float | None:
    """The activator's wake request on the resource (RFC 3339), as Unix seconds."""
    raw = ((body.get("metadata") or {}).get("annotations") or {}).get(WAKE_ANNOTATION)
    if not raw:
        return None
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _scalers_part(current: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of `current` that the scaler writes in `new` (pure)."""
    part = {k: current[k] for k in new if k in current}
    wanted = {c.get("type") for c in new.get("conditions") or []}
    part["conditions"] = [c for c in current.get("conditions") or [] if c.get("type") in wanted]
    if "capacityPlan" in new:
        plan = current.get("capacityPlan") or {}
        part["capacityPlan"] = {k: plan[k] for k in new["capacityPlan"] if k in plan}
    return part


def _parsed(stored: Any) -> ScalingHistory | None:
    if not isinstance(stored, Mapping):
        return None
    try:
        return ScalingHistory.from_json(json.dumps(stored))
    except ValueError:
        return None


def _material(history: ScalingHistory, missing_cap: int) -> tuple[Any, ...]:
    """What of a history steers later decisions, apart from the times of readings
    (missing-metrics cycles past the fallback threshold all steer the same fallback)."""
    last = history.recommendations[-1].replicas if history.recommendations else None
    return (last, history.scale_events, history.learned_startup_seconds,
            history.guard_waiting, history.guard_until,
            min(history.missing_cycles, missing_cap), history.last_active_time is None,
            history.volatility)


def _load_values(history: ScalingHistory) -> tuple[float, ...]:
    """The mean readings, without their times or count: constant while nothing changes
    (also while the averaging window fills with the same reading)."""
    def mean(values: list[float]) -> float:
        return round(sum(values) / len(values), 2) if values else 0.0

    return (mean([v for _, v in history.loads]),
            mean([n for _, n, _ in history.arrivals]), mean([r for _, _, r in history.arrivals]))


def _unchanged(before: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether `new` differs from `before` only in when the metrics were read (that alone
    is no reason to write). Compared as values first; as JSON only when they differ, since
    after a restart `before` is parsed JSON and `new` may hold what JSON writes as text."""
    a, b = _without_reading_time(before), _without_reading_time(new)
    return a == b or _json(a) == _json(b)


def _without_reading_time(status: Mapping[str, Any]) -> dict[str, Any]:
    metrics = {k: v for k, v in (status.get("metrics") or {}).items() if k != "observedAt"}
    return {**status, "metrics": metrics}


def _json(status: Mapping[str, Any]) -> str:
    return json.dumps(status, sort_keys=True, default=str)
