"""One scaling cycle over every LanguageModelDeployment (the I/O half of the scaler).

Reads come from kopf's in-memory indexes (no list calls) and from Prometheus (one query per
metric for all deployments); writes are a server-side apply of `replicas` under the
scaler's field manager, pod-deletion-cost annotations before a scale-down, and a status
apply only when something other than the time of the reading changed.
"""

from __future__ import annotations

import contextvars
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from lmscale import operator_metrics, render
from lmscale.api.status import Condition, ConditionReason, ConditionType
from lmscale.controller import conditions
from lmscale.controller.desired import Desired, Invalid, desired_state
from lmscale.controller.pods import DELETION_COST, PodInfo
from lmscale.k8s import reconcile, resources
from lmscale.k8s.client import SCALER_MANAGER, ApiException, Kube, namespace_gone
from lmscale.metrics.client import PrometheusClient
from lmscale.metrics.reader import MetricsReader
from lmscale.metrics.results import MetricsSnapshot, Target
from lmscale.policy import Decision, ScalingHistory, decide
from lmscale.scaler import drain, observe, pod_load
from lmscale.scaler.policy_spec import calibration_ready, policy_spec
from lmscale.settings import OperatorSettings

log = logging.getLogger(__name__)
Key = tuple[str, str]
# Post a Kubernetes Event: (object body, type, reason, message).
EventPoster = Callable[[Mapping[str, Any], str, str, str], None]


# Scaling history goes to status when the recommendation changes, on a scale event, and
# at least this often; a restarted operator loses at most this much of a steady run.
PERSIST_HISTORY_SECONDS = 30.0
WORKERS = 8


@dataclasses.dataclass(frozen=True)
class KeptHistory:
    history: ScalingHistory
    recommendation: int
    persisted: dict[str, Any]
    persisted_at: float


@dataclasses.dataclass
class ScalerMemory:
    """What one operator process keeps between cycles; losing it on restart loses nothing
    that matters (scaling history lives in status, at most PERSIST_HISTORY_SECONDS old)."""

    last_cycle: datetime | None = None
    desired: dict[tuple[str, int], Desired | Invalid] = dataclasses.field(default_factory=dict)
    # The scaler's part of each status as last written: the base for the next one, since
    # kopf's index may not show our own write yet when the next cycle starts.
    written: dict[Key, dict[str, Any]] = dataclasses.field(default_factory=dict)
    histories: dict[Key, KeptHistory] = dataclasses.field(default_factory=dict)


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
                  pods: Mapping[Key, Sequence[PodInfo]], now: datetime | None = None
                  ) -> CycleReport:
        started = time.perf_counter()
        now = now or datetime.now(UTC)
        outcomes = {key: self._desired(body) for key, body in lmds.items()}
        targets = [Target(ns, name, o.lmd.spec.engine.kind.value)
                   for (ns, name), o in outcomes.items()
                   if isinstance(o, Desired) and o.lmd.spec.scaling.enabled]
        snapshot = self.reader.read(targets, now=now.timestamp()) if targets else None

        def one(key: Key) -> int:
            try:
                return self._one(key, lmds[key], outcomes[key], deployments.get(key),
                                 list(pods.get(key, ())), snapshot, now)
            except Exception as error:  # noqa: BLE001 - one bad resource must not stop the rest
                if not (isinstance(error, ApiException) and namespace_gone(error)):
                    log.exception("scaling %s/%s failed; the next cycle retries", *key)
                return 0  # (a resource deleted while the cycle ran has nothing left to scale)

        # Deciding is cheap; the apiserver round-trips are not, so they overlap. Each task
        # runs in a copy of this thread's context, where kopf keeps what posting Events needs.
        keys = list(lmds)
        contexts = [contextvars.copy_context() for _ in keys]
        with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="scaler") as pool:
            scaled = sum(pool.map(lambda k, c: c.run(one, k), keys, contexts))
        self._forget_deleted(lmds)
        self.memory.last_cycle = now
        elapsed = time.perf_counter() - started
        self.metrics.cycle_duration.observe(elapsed)
        return CycleReport(len(lmds), scaled, snapshot.query_count if snapshot else 0, elapsed)

    def _desired(self, body: Mapping[str, Any]) -> Desired | Invalid:
        meta = body["metadata"]
        key = (str(meta.get("uid")), int(meta.get("generation", 0)))
        if key not in self.memory.desired:
            self.memory.desired[key] = desired_state(body)
        return self.memory.desired[key]

    def _forget_deleted(self, lmds: Mapping[Key, Mapping[str, Any]]) -> None:
        live = {(str(b["metadata"].get("uid")), int(b["metadata"].get("generation", 0)))
                for b in lmds.values()}
        for generation in [g for g in self.memory.desired if g not in live]:
            del self.memory.desired[generation]
        for key in [k for k in self.memory.written if k not in lmds]:
            del self.memory.written[key]
            self.memory.histories.pop(key, None)
            self.metrics.forget(*key)

    def _one(self, key: Key, body: Mapping[str, Any], outcome: Desired | Invalid,
             deployment: Mapping[str, Any] | None, pods: list[PodInfo],
             snapshot: MetricsSnapshot | None, now: datetime) -> int:
        status = dict(body.get("status") or {})
        previous = self.memory.written.get(key) or status
        generation = int(body["metadata"].get("generation", 0))
        current = int((deployment or {}).get("spec", {}).get("replicas") or 0)
        scaled = 0
        extra: dict[str, Any] = {}
        if isinstance(outcome, Invalid) or deployment is None:
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
        elif not calibration_ready(outcome.lmd, outcome.plan):
            desired = current
            metrics_condition = conditions.condition(
                ConditionType.METRICS_AVAILABLE, None, ConditionReason.CALIBRATING,
                "calibrating the per-replica target for this plan, SLO and token mix "
                "(seconds, once per operator): replicas held", now=now, generation=generation)
        else:
            assert snapshot is not None
            decision = self._decide(key, outcome, status, current, pods,
                                    snapshot.get(*key), now)
            desired = decision.replicas
            extra["scaling"] = self._keep_history(key, decision, scaled=desired != current,
                                                  now=now)
            availability = snapshot.availability(*key)
            metrics_condition = conditions.condition(
                ConditionType.METRICS_AVAILABLE, availability.available, availability.reason,
                availability.message, now=now, generation=generation)
            values = snapshot.get(*key)
            extra["metrics"] = {k: v for k, v in {
                "waiting": values.waiting, "running": values.running,
                "kvCacheUsage": values.kv_cache_usage,
                "ttftP95Seconds": values.ttft_p95_seconds,
                "gpuUtilization": values.gpu_utilization,
                "promptTokensPerSecond": values.prompt_tokens_per_second}.items()
                if v is not None}
            direction = ("up" if desired > current else "down" if desired < current
                         else "none")
            self.metrics.record_decision(direction=direction, reason=decision.reason.value)
            if desired != current:
                self._scale(body, key, current, desired, pods, reason=decision.reason.value,
                            message=decision.message, now=now)
                extra["lastScaleTime"] = now.isoformat().replace("+00:00", "Z")
                extra["lastScaleReason"] = f"scaled {decision.message}"
                scaled = 1
        workload = conditions.Workload(generation=generation, desired_replicas=desired,
                                       deployment=deployment, pods=pods)
        self.metrics.set_replicas(*key, desired=desired, current=current)
        spec = outcome.lmd.spec if isinstance(outcome, Desired) else None
        observed = extra.get("metrics") or {}
        self.metrics.observe_model(
            *key, ready_replicas=workload.ready_replicas,
            max_replicas=spec.scaling.max_replicas if spec else None,
            observed_waiting_requests=observed.get("waiting"),
            observed_ttft_p95_seconds=observed.get("ttftP95Seconds"),
            observed_gpu_utilization_ratio=observed.get("gpuUtilization"),
            slo_ttft_p95_seconds=spec.slo.ttft_p95_ms / 1000.0 if spec else None,
            metrics_available=1.0 if metrics_condition.status == "True" else 0.0)
        new = {
            "replicas": workload.replicas,
            "readyReplicas": workload.ready_replicas,
            "desiredReplicas": desired,
            "conditions": reconcile.conditions_json(
                [Condition.model_validate(c) for c in previous.get("conditions") or []],
                [*conditions.workload_conditions(workload, now=now), metrics_condition]),
            **{k: previous[k] for k in ("lastScaleTime", "lastScaleReason") if k in previous},
            **extra,
        }
        self._write_status(key, body, new, now=now)
        return scaled

    def _decide(self, key: Key, desired: Desired, status: Mapping[str, Any], current: int,
                pods: list[PodInfo], values: Any, now: datetime) -> Decision:
        spec = policy_spec(desired.lmd, desired.plan)
        kept = self.memory.histories.get(key)
        stored = status.get("scaling")
        if kept is not None:
            history = kept.history
        elif stored:
            history = ScalingHistory.from_json(json.dumps(stored))
        else:
            history = ScalingHistory()
        seen = observe.observation(spec_replicas=current, pods=pods, metrics=values, now=now,
                                   since=self.memory.last_cycle)
        return decide(spec, seen, history, now=now.timestamp())

    def _keep_history(self, key: Key, decision: Decision, *, scaled: bool, now: datetime
                      ) -> dict[str, Any]:
        """The history to put in status: the new one when it matters, else the last written."""
        kept = self.memory.histories.get(key)
        t = now.timestamp()
        if (kept is None or scaled or decision.recommendation != kept.recommendation
                or t - kept.persisted_at >= PERSIST_HISTORY_SECONDS):
            persisted, persisted_at = json.loads(decision.history.to_json()), t
        else:
            persisted, persisted_at = kept.persisted, kept.persisted_at
        self.memory.histories[key] = KeptHistory(decision.history, decision.recommendation,
                                                 persisted, persisted_at)
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
        before = self.memory.written.get(key)
        if before is not None and _without_reading_time(before) == _without_reading_time(status):
            return
        if "metrics" in status:
            status["metrics"]["observedAt"] = now.isoformat().replace("+00:00", "Z")
        reconcile.write_workload_status(self.kube, body, status)
        self.memory.written[key] = status


def _without_reading_time(status: Mapping[str, Any]) -> str:
    """A status as JSON, minus when the metrics were read (that alone is no reason to write)."""
    metrics = {k: v for k, v in (status.get("metrics") or {}).items() if k != "observedAt"}
    return json.dumps({**status, "metrics": metrics}, sort_keys=True, default=str)
