"""The live fleet: one replica engine per Ready pod, fed by each deployment's offered load.

Pure: the caller passes the time in (seconds on any monotonic clock) and what Kubernetes
says (`DeploymentInfo`); the fleet never reads a clock or talks to the API.

How engines map to pods:
- a pod gets a `ReplicaEngine` (the one engine model, `lmscale.sim.engine`) when it is
  first seen Ready, warm at once: its cold start already happened while it was not Ready;
- a Ready pod takes new requests from its deployment's balancer, as behind the Service;
- a pod that is still listed but not Ready (terminating, or failing its probe) takes no new
  requests but keeps running and exporting what it holds, as a draining server does; it
  takes requests again if it turns Ready;
- a pod that is gone from the API loses its engine, and the requests it held are **lost**
  (counted in `lost`): its streams broke, and the simulator models no client retries;
- requests that arrive while a deployment has no Ready pod are refused (counted in
  `unserved`), as a Service without endpoints refuses connections.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lmscale.sim.balancer import Balancer, BalancerKind, make_balancer
from lmscale.sim.cluster import Replica
from lmscale.sim.engine import EngineMetrics, ReplicaEngine, StepModel
from lmscale.sim.request import CompletedRequest, Request
from lmscale.sim.serve import engines, load

TTFT_WINDOW_SECONDS = 60.0  # /state's TTFT p95, as the operator's rate window
BUSY_WINDOW_SECONDS = 5.0  # GPU utilisation is averaged over this window, like DCGM's sampling


@dataclass(frozen=True)
class PodInfo:
    """A pod of a deployment as the API lists it."""

    name: str
    ready: bool
    node: str = ""
    variant: str | None = None  # a fallback GPU type's pod: its type


@dataclass(frozen=True, eq=False)
class DeploymentInfo:
    """A LanguageModelDeployment reduced to what the fleet needs, and its listed pods."""

    namespace: str
    name: str
    engine: str  # spec.engine.kind
    model: str  # spec.model.name: vLLM's and SGLang's model_name label
    gpu_model: str  # DCGM's modelName label
    gpus_per_replica: int
    perf: StepModel
    pods: tuple[PodInfo, ...] = ()
    # Each fallback GPU type's (type, DCGM modelName, GPUs per replica, engine model).
    variants: tuple[tuple[str, str, int, StepModel], ...] = ()

    def for_pod(self, pod: PodInfo) -> DeploymentInfo:
        """The template a pod plays: its own GPU type's plan, or the primary's."""
        for key, gpu_model, gpus, perf in self.variants:
            if key == pod.variant:
                return dataclasses.replace(self, gpu_model=gpu_model, gpus_per_replica=gpus,
                                           perf=perf)
        return self


@dataclass(frozen=True)
class HistogramView:
    """A histogram at one moment: cumulative counts per upper bound (the last is +Inf)."""

    buckets: tuple[tuple[float, int], ...]
    sum: float
    count: int


class Histogram:
    """Cumulative observation counts, as a Prometheus histogram keeps them."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self._counts = [0] * (len(self.bounds) + 1)
        self._sum = 0.0

    def observe(self, value: float, count: int = 1) -> None:
        """`count` observations of `value` (an engine that observes each token's gap)."""
        index = next((i for i, b in enumerate(self.bounds) if value <= b), len(self.bounds))
        self._counts[index] += count
        self._sum += value * count

    def view(self) -> HistogramView:
        running, buckets = 0, []
        for bound, count in zip((*self.bounds, math.inf), self._counts, strict=True):
            running += count
            buckets.append((bound, running))
        return HistogramView(tuple(buckets), self._sum, running)


@dataclass(frozen=True)
class PodView:
    """One pod's series at one moment: what the exporter renders."""

    namespace: str
    pod: str
    deployment: str
    engine: str
    model: str
    node: str
    gpu_model: str
    gpus: int
    ready: bool
    waiting: int
    running: int
    kv_cache_usage: float
    gpu_utilization: float  # 0..1
    completed: int
    prompt_tokens: int  # prefilled, since the pod started
    ttft: HistogramView
    tpot: HistogramView
    queue: HistogramView
    prefill: HistogramView
    input_length: HistogramView


class _Pod:
    """A pod's engine and the counters its exporters would keep."""

    def __init__(self, serial: int, info: DeploymentInfo, pod: PodInfo, now: float) -> None:
        export = engines.export_for(info.engine)
        self.name = pod.name
        self.node = pod.node
        self.ready = pod.ready
        self.info = info  # the template the pod was created from (engine, model, GPUs)
        engine = ReplicaEngine(info.perf, ready_at=now)
        self.replica = Replica(serial, created_at=now, ready_at=now, engine=engine)
        self.ttft = Histogram(export.ttft_buckets or engines.VLLM_TTFT_BUCKETS)
        self.tpot = Histogram(export.tpot_buckets or engines.VLLM_ITL_BUCKETS)
        self._tpot_per_token = export.tpot_per_token
        self.queue = Histogram(engines.TGI_DURATION_BUCKETS)
        self.prefill = Histogram(engines.TGI_DURATION_BUCKETS)
        self.completed = 0
        self.prompt_tokens = 0
        self.input_length = Histogram(engines.INPUT_LENGTH_BUCKETS)
        self.latest = EngineMetrics(now, 0, 0, 0.0, 0.0)
        self._busy: deque[tuple[float, float, float]] = deque()  # (time, busy s, span s)
        self._observed_at = now

    @property
    def engine(self) -> ReplicaEngine:
        return self.replica.engine

    def finished(self, done: Sequence[CompletedRequest]) -> None:
        for request in done:
            self.completed += 1
            self.queue.observe(request.queue_seconds)
            self.prefill.observe(request.first_token_s - request.admitted_s)
            self.input_length.observe(request.request.prompt_tokens)
            gaps = request.request.output_tokens - 1
            if gaps > 0:
                # The engine model keeps a request's mean gap, not each gap.
                self.tpot.observe(request.tpot_seconds, gaps if self._tpot_per_token else 1)

    def observe(self, now: float) -> tuple[float, ...]:
        """Take the engine's snapshot; returns its new TTFT samples."""
        metrics = self.engine.snapshot(now)
        span = now - self._observed_at
        self._observed_at = now
        if span > 0:
            self._busy.append((now, metrics.gpu_busy * span, span))
        while self._busy and self._busy[0][0] < now - BUSY_WINDOW_SECONDS:
            self._busy.popleft()
        for sample in metrics.ttft_samples:
            self.ttft.observe(sample)
        self.prompt_tokens += metrics.prompt_tokens
        self.latest = metrics
        return metrics.ttft_samples

    @property
    def gpu_utilization(self) -> float:
        span = sum(s for _, _, s in self._busy)
        return sum(b for _, b, _ in self._busy) / span if span > 0 else 0.0


@dataclass
class _Deployment:
    """One deployment's pods, balancer, offered load and running totals."""

    info: DeploymentInfo
    balancer: Balancer
    arrivals: load.Arrivals
    load: load.Load
    origin: float  # when its load started: time 0 of the arrival process
    pods: dict[str, _Pod] = field(default_factory=dict)
    offered: int = 0
    completed: int = 0
    lost: int = 0
    unserved: int = 0
    ttft: deque[tuple[float, float]] = field(default_factory=deque)


class Fleet:
    """Every deployment's engines, advanced on the caller's clock."""

    def __init__(
        self,
        *,
        default_load: load.Load,
        balancer: BalancerKind = BalancerKind.LEAST_REQUESTS,
        seed: int = 0,
    ) -> None:
        self.default_load = default_load
        self._balancer = balancer
        self._seed = seed
        self._deployments: dict[tuple[str, str], _Deployment] = {}
        self._overrides: dict[tuple[str, str], load.Load] = {}
        self._starts: dict[tuple[str, str], int] = {}  # load starts per deployment: seeds
        self._serial = 0
        self.now = 0.0

    # ----------------------------------------------------------------- what Kubernetes says

    def sync(self, deployments: Sequence[DeploymentInfo], now: float) -> None:
        """Make the engines match the listed deployments and pods (see the module doc)."""
        self.advance(now)
        listed = {(d.namespace, d.name): d for d in deployments}
        for key in [k for k in self._deployments if k not in listed]:
            self._drop(self._deployments.pop(key))
        for key, info in listed.items():
            deployment = self._deployments.get(key)
            if deployment is None:
                deployment = self._deployments[key] = self._create(info, now)
            deployment.info = info
            self._sync_pods(deployment, now)

    # ----------------------------------------------------------------- offered load

    def set_load(self, namespace: str, name: str, offered: load.Load | None, now: float) -> None:
        """Change one deployment's load from `now` on; None returns it to the default."""
        key = (namespace, name)
        self.advance(now)  # arrivals so far came under the old load
        if offered is None:
            self._overrides.pop(key, None)
        else:
            self._overrides[key] = offered
        deployment = self._deployments.get(key)
        if deployment is not None:
            self._start_load(deployment, now)

    def load_of(self, namespace: str, name: str) -> load.Load:
        return self._overrides.get((namespace, name), self.default_load)

    # ----------------------------------------------------------------- the clock

    def advance(self, now: float) -> None:
        """Route arrivals up to `now`, run every engine to `now` and take its metrics."""
        if now < self.now:
            return  # time only moves forward
        self.now = now
        for deployment in self._deployments.values():
            self._route(deployment, now)
            for pod in deployment.pods.values():
                self._finished(deployment, pod, pod.engine.advance(now))
                samples = pod.observe(now)
                deployment.ttft.extend((now, s) for s in samples)
            while deployment.ttft and deployment.ttft[0][0] < now - TTFT_WINDOW_SECONDS:
                deployment.ttft.popleft()

    # ----------------------------------------------------------------- reading

    def pods(self) -> list[PodView]:
        """Every pod with an engine, for the exporter (as of the last `advance`)."""
        return [
            _view(d, pod)
            for d in self._deployments.values()
            for pod in sorted(d.pods.values(), key=lambda p: p.name)
        ]

    def state(self) -> dict[str, Any]:
        """Per deployment, what `GET /state` answers (as of the last `advance`)."""
        return {
            f"{ns}/{name}": _state(d, self.now)
            for (ns, name), d in sorted(self._deployments.items())
        }

    # ----------------------------------------------------------------- internals

    def _create(self, info: DeploymentInfo, now: float) -> _Deployment:
        key = (info.namespace, info.name)
        offered = self.load_of(*key)
        deployment = _Deployment(
            info=info,
            balancer=make_balancer(self._balancer),
            arrivals=load.start(offered, rng=self._rng(key)),
            load=offered,
            origin=now,
        )
        return deployment

    def _start_load(self, deployment: _Deployment, now: float) -> None:
        key = (deployment.info.namespace, deployment.info.name)
        deployment.load = self.load_of(*key)
        deployment.arrivals = load.start(deployment.load, rng=self._rng(key))
        deployment.origin = now

    def _rng(self, key: tuple[str, str]) -> random.Random:
        """A generator per load start: the same seed and events give the same arrivals."""
        count = self._starts.get(key, 0)
        self._starts[key] = count + 1
        return random.Random(f"{self._seed}/{key[0]}/{key[1]}/{count}")

    def _sync_pods(self, deployment: _Deployment, now: float) -> None:
        listed = {pod.name: pod for pod in deployment.info.pods}
        for name in [n for n in deployment.pods if n not in listed]:
            gone = deployment.pods.pop(name)
            deployment.lost += len(gone.engine.abandon())
        for name, info in listed.items():
            pod = deployment.pods.get(name)
            if pod is None:
                if info.ready:  # a pod that never was Ready has no server yet
                    self._serial += 1
                    deployment.pods[name] = _Pod(self._serial, deployment.info.for_pod(info),
                                                 info, now)
                continue
            pod.ready, pod.node = info.ready, info.node or pod.node

    def _drop(self, deployment: _Deployment) -> None:
        for pod in deployment.pods.values():
            pod.engine.abandon()

    def _route(self, deployment: _Deployment, now: float) -> None:
        """Send each arrival up to `now` to a Ready pod, in arrival order."""
        arrivals = deployment.arrivals.take(now - deployment.origin)
        if not arrivals:
            return
        deployment.offered += len(arrivals)
        ready = [pod for pod in deployment.pods.values() if pod.ready]
        if not ready:
            deployment.unserved += len(arrivals)
            return
        by_id = {pod.replica.id: pod for pod in ready}
        replicas = [pod.replica for pod in ready]
        for arrival in arrivals:
            at = deployment.origin + arrival.arrival_s
            request = Request(at, arrival.prompt_tokens, arrival.output_tokens)
            for pod in ready:  # completions before `at`, attributed to their pod
                if pod.engine.next_change <= at:
                    self._finished(deployment, pod, pod.engine.advance(at))
            stray: list[CompletedRequest] = []
            pod = by_id[deployment.balancer.pick(replicas, at, stray).id]
            deployment.completed += len(stray)  # none: every engine is already at `at`
            self._finished(deployment, pod, pod.engine.submit(request, at))

    def _finished(
        self, deployment: _Deployment, pod: _Pod, done: Sequence[CompletedRequest]
    ) -> None:
        deployment.completed += len(done)
        pod.finished(done)


def _view(deployment: _Deployment, pod: _Pod) -> PodView:
    metrics = pod.latest
    return PodView(
        namespace=deployment.info.namespace,
        pod=pod.name,
        deployment=deployment.info.name,
        engine=pod.info.engine,
        model=pod.info.model,
        node=pod.node,
        gpu_model=pod.info.gpu_model,
        gpus=pod.info.gpus_per_replica,
        ready=pod.ready,
        waiting=metrics.waiting,
        running=metrics.running,
        kv_cache_usage=metrics.kv_cache_usage,
        gpu_utilization=pod.gpu_utilization,
        completed=pod.completed,
        prompt_tokens=pod.prompt_tokens,
        ttft=pod.ttft.view(),
        tpot=pod.tpot.view(),
        queue=pod.queue.view(),
        prefill=pod.prefill.view(),
        input_length=pod.input_length.view(),
    )


def _state(deployment: _Deployment, now: float) -> dict[str, Any]:
    pods = list(deployment.pods.values())
    ttfts = sorted(s for _, s in deployment.ttft)
    usage = [p.latest.kv_cache_usage for p in pods]
    return {
        "engine": deployment.info.engine,
        "readyPods": sorted(p.name for p in pods if p.ready),
        "drainingPods": sorted(p.name for p in pods if not p.ready),
        "waiting": sum(p.latest.waiting for p in pods),
        "running": sum(p.latest.running for p in pods),
        "kvCacheUsage": sum(usage) / len(usage) if usage else None,
        "gpuUtilization": (sum(p.gpu_utilization for p in pods) / len(pods)) if pods else None,
        "completed": deployment.completed,
        "lost": deployment.lost,
        "unserved": deployment.unserved,
        "offered": deployment.offered,
        "ttftP95Seconds": percentile(ttfts, 0.95),
        "pods": {
            p.name: {
                "ready": p.ready,
                "waiting": p.latest.waiting,
                "running": p.latest.running,
                "kvCacheUsage": p.latest.kv_cache_usage,
                "gpuUtilization": p.gpu_utilization,
                "completed": p.completed,
            }
            for p in sorted(pods, key=lambda p: p.name)
        },
        "ttftSamples": len(ttfts),
        "offeredRps": deployment.arrivals.rate(now - deployment.origin),
        "load": str(deployment.load.spec),
        "promptTokens": deployment.load.tokens.prompt,
        "outputTokens": deployment.load.tokens.output,
    }


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted samples; None without samples."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]
