"""`gpusPerReplica: auto`: the tensor-parallel degree with the lowest cost per served request.

The fewest GPUs that hold one sequence is rarely the cheapest way to serve: a 70B model on
two H100s has room for two 8k sequences, four H100s hold 57 and serve more than ten times
the requests for twice the price. So every degree the model's shape allows and that fits is
a candidate, and its capacity is what the autoscaler will aim at: the requests per second
one replica carries while 99% of requests meet the SLO, calibrated on the engine model
(`lmscale.sim.calibrate`, the same function, inputs and tolerance the scaler calibrates
with). The cost of a request is the replica's hourly price over that capacity.

A calibration costs seconds of CPU, so two cheap steps come first:
- the planner's mean-latency model (`planner.slo`) estimates every candidate's capacity in
  microseconds; only candidates within `SCREEN` of the best estimate are calibrated (the
  mean model ranks degrees well, but misjudges the margin a p99 objective needs);
- a lone survivor needs no calibration at all, and calibrations are cached by their inputs
  for the life of the process and shared with the scaler, which needs the chosen plan's
  anyway: auto costs the calibrations of the runners-up, one or two on most inputs (a
  second or so each on an idle core for an 8B model, several times that on a loaded one).
  Concurrent callers with the same inputs (a fleet of one spec) share one computation, and
  the operator never waits for one (`wait=False`): they compute on one background worker;
- the choice carries a hash of what it was made from (`choice_inputs`); given back with
  `decided` (the operator keeps it in `status.capacityPlan`), equal inputs skip the
  choice, so a restarted operator does not calibrate every resource again.

Within `TIE` (5%) of the cheapest, fewer GPUs per replica win: a replica is the step the
fleet scales by, so a smaller one wastes less at loads between two fleet sizes, starts on a
node with fewer free GPUs and fails a smaller share of the fleet; a few percent of capacity
per GPU, within what the step model can tell apart, does not outweigh that.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from lmscale.planner import catalog, parallelism, performance, plan, slo
from lmscale.planner.plan import CapacityPlan

if TYPE_CHECKING:
    from lmscale.sim.calibrate import Calibration

# Candidates whose estimated cost per request is within this factor of the best estimate
# are calibrated; the rest lose on the estimate alone.
SCREEN = 1.3
# Calibrated costs this close to the cheapest count as a tie, which fewer GPUs win.
TIE = 0.05
DEFAULT_TOLERANCE = 0.1  # the autoscaler's tolerance band (policy.spec.DEFAULT_TOLERANCE)
# Bump when the choice or the calibration changes: persisted choices are then made again.
CHOICE_METHOD = 1
CALIBRATIONS = 512


@dataclasses.dataclass(frozen=True)
class Workload:
    """What the degree is chosen for: the SLO, the token mix and the autoscaler's band."""

    ttft_p95_s: float
    tpot_p95_s: float
    mean_prompt_tokens: float
    mean_output_tokens: float
    tolerance: float = DEFAULT_TOLERANCE

    def describe(self) -> str:
        return (f"TTFT p95 {self.ttft_p95_s * 1e3:.0f} ms, TPOT p95 {self.tpot_p95_s * 1e3:.0f} ms"
                f", {self.mean_prompt_tokens:.0f} prompt + {self.mean_output_tokens:.0f} output "
                "tokens")


@dataclasses.dataclass(frozen=True)
class Option:
    """One candidate degree: its plan, estimated and (if calibrated) measured capacity."""

    plan: CapacityPlan
    estimated_rps: float  # requests/s per replica within the SLO, mean-latency model
    calibrated_rps: float | None = None  # the same from the engine-model calibration
    problem: str | None = None  # why it cannot serve within the SLO at all

    @property
    def gpus(self) -> int:
        return self.plan.gpus_per_replica

    @property
    def requests_per_second(self) -> float:
        """The capacity the choice uses: calibrated where calibrated, else estimated."""
        return self.calibrated_rps if self.calibrated_rps is not None else self.estimated_rps

    @property
    def cost_per_request(self) -> float:
        """USD per served request at full capacity; inf when it serves none."""
        rps = self.requests_per_second
        return self.plan.cost_per_hour / (rps * 3600) if rps > 0 else math.inf

    @property
    def requests_per_gpu_hour(self) -> float:
        return self.requests_per_second * 3600 / self.gpus

    def to_dict(self) -> dict[str, Any]:
        return {
            "gpu": self.plan.gpu.key,
            "gpus_per_replica": self.gpus,
            "fits": self.plan.fits,
            "problem": self.problem,
            "requests_per_second_per_replica": round(self.requests_per_second, 4),
            "estimated_requests_per_second_per_replica": round(self.estimated_rps, 4),
            "calibrated": self.calibrated_rps is not None,
            "requests_per_gpu_hour": round(self.requests_per_gpu_hour, 1),
            "cost_per_1000_requests": (round(self.cost_per_request * 1000, 4)
                                       if math.isfinite(self.cost_per_request) else None),
        }


@dataclasses.dataclass(frozen=True)
class Choice:
    """The chosen plan, every candidate considered, and why the winner won."""

    plan: CapacityPlan
    options: tuple[Option, ...]
    reason: str
    workload: Workload

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "slo": self.workload.describe(),
                "candidates": [option.to_dict() for option in self.options]}


def estimated_rps(perf: performance.ReplicaPerformance, workload: Workload) -> float:
    """Requests/s one replica carries within the SLO by the planner's mean-latency model."""
    mix = _mix(workload)
    target = slo.target_concurrency(perf, **mix)
    latency = slo.latency_at(perf, concurrency=int(target),
                             mean_prompt_tokens=workload.mean_prompt_tokens,
                             mean_output_tokens=workload.mean_output_tokens)
    return latency.requests_per_second


def _mix(workload: Workload) -> dict[str, float]:
    return dict(ttft_p95_s=workload.ttft_p95_s, tpot_p95_s=workload.tpot_p95_s,
                mean_prompt_tokens=workload.mean_prompt_tokens,
                mean_output_tokens=workload.mean_output_tokens)


_calibrations: OrderedDict[tuple[object, ...], Future[Calibration]] = OrderedDict()
_calibrations_lock = threading.Lock()
# The operator's calibrations run here, one at a time: never on a thread that answers
# watch events or scales, and never more than one core's worth beside them.
_background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lmscale-calibrate")


# Told of the CPU seconds of each calibration computed (the operator's metrics).
_observers: list[Callable[[float], None]] = []


def observe(observer: Callable[[float], None]) -> None:
    _observers.append(observer)


class CalibrationPending(Exception):
    """A choice that needs calibrations still computing in the background (`wait=False`)."""

    def __init__(self, pending: Sequence[Future[Calibration]]) -> None:
        n = len(pending)
        super().__init__(f"{n} calibration{'s' if n > 1 else ''} of candidate degrees computing")
        self.pending = tuple(pending)


def _started(perf: performance.ReplicaPerformance, workload: Workload, *,
             background: bool) -> Future[Calibration]:
    """The one computation for these inputs (callers with the same inputs share it), run
    in the calling thread or on the background worker when it is not there yet."""
    key = (perf, workload)
    with _calibrations_lock:
        found = _calibrations.get(key)
        if found is not None:
            _calibrations.move_to_end(key)
            return found
        future: Future[Calibration] = Future()
        _calibrations[key] = future
        while len(_calibrations) > CALIBRATIONS:
            _calibrations.popitem(last=False)
    if background:
        _background.submit(_compute, key, future)
    else:
        _compute(key, future)
    return future


def _compute(key: tuple[object, ...], future: Future[Calibration]) -> None:
    future.set_running_or_notify_cancel()
    started = time.thread_time()
    try:
        perf, workload = key
        found = _calibrate(perf, workload)  # type: ignore[arg-type]
    except BaseException as error:  # noqa: BLE001 - handed to whoever waits, and retried
        with _calibrations_lock:
            if _calibrations.get(key) is future:
                del _calibrations[key]
        future.set_exception(error)
        return
    for observer in _observers:
        observer(time.thread_time() - started)
    future.set_result(found)


def calibration(perf: performance.ReplicaPerformance, workload: Workload) -> Calibration:
    """The autoscaler's calibration of one replica for this workload, computed once per
    process (callers with the same inputs wait for the first): the scaler sizes the chosen
    plan with this same result."""
    return _started(perf, workload, background=False).result()


def calibration_started(perf: performance.ReplicaPerformance, workload: Workload
                        ) -> Future[Calibration]:
    """`calibration` without waiting: computed on the background worker if it must be."""
    return _started(perf, workload, background=True)


def _calibrate(perf: performance.ReplicaPerformance, workload: Workload) -> Calibration:
    from lmscale.sim import calibrate  # the engine model sits above the planner
    from lmscale.sim.results import Slo

    return calibrate.calibrate(
        perf,
        calibrate.lengths_from_means(workload.mean_prompt_tokens, workload.mean_output_tokens),
        slo=Slo(ttft_seconds=workload.ttft_p95_s, tpot_seconds=workload.tpot_p95_s),
        tolerance=workload.tolerance,
    )


def calibrated_rps(perf: performance.ReplicaPerformance, workload: Workload) -> float:
    """Requests/s at the top of the autoscaler's tolerance band, from `calibration`."""
    return calibration(perf, workload).rate


def _option(capacity: CapacityPlan, workload: Workload) -> Option:
    perf = performance.replica_performance(capacity)
    problem = slo.slo_problem(perf, **_mix(workload))
    return Option(plan=capacity, estimated_rps=0.0 if problem else estimated_rps(perf, workload),
                  problem=problem)


def choose(
    plans: Sequence[CapacityPlan],
    workload: Workload,
    *,
    screen: float = SCREEN,
    measure: Callable[[performance.ReplicaPerformance, Workload], float] | None = None,
) -> Choice | None:
    """The plan with the lowest cost per request among `plans`, or None if none fits.

    `plans` are candidate replicas, one per (GPU type, degree), fewest GPUs first within a
    type. `screen=math.inf` calibrates every candidate (the tests and the capacity table do,
    to check the screen). `measure` gives a candidate's capacity (default `calibrated_rps`).
    """
    measure = measure or calibrated_rps
    options = [_option(capacity, workload) for capacity in plans if capacity.fits]
    if not options:
        return None
    serving = [o for o in options if o.problem is None and o.estimated_rps > 0]
    if not serving:
        # Nothing meets the SLO even for one request: the fastest single request wins.
        best = max(options, key=lambda o: (o.gpus, -o.plan.cost_per_hour))
        return Choice(plan=best.plan, options=tuple(options), workload=workload, reason=(
            f"{_name(best)}: nothing that fits meets {workload.describe()} even for one "
            f"request ({best.problem}); the most GPUs per replica is the fastest"))
    contenders = _contenders(serving, screen)
    if len(contenders) > 1:
        measured = {id(o): measure(performance.replica_performance(o.plan), workload)
                    for o in contenders}
        options = [dataclasses.replace(o, calibrated_rps=measured[id(o)]) if id(o) in measured
                   else o for o in options]
        contenders = [o for o in options if o.calibrated_rps is not None]
    best_cost = min(o.cost_per_request for o in contenders)
    best = min((o for o in contenders if o.cost_per_request <= best_cost * (1 + TIE)),
               key=lambda o: (o.gpus, o.cost_per_request))
    return Choice(plan=best.plan, options=tuple(options), workload=workload,
                  reason=_reason(best, options, workload))


def _contenders(serving: Sequence[Option], screen: float) -> list[Option]:
    """The candidates within `screen` of the best estimate: `choose` calibrates them when
    there is more than one."""
    if not serving:
        return []
    cheapest = min(o.cost_per_request for o in serving)
    return [o for o in serving if o.cost_per_request <= cheapest * screen]


def _pending(plans: Sequence[CapacityPlan], workload: Workload, screen: float
             ) -> list[Future[Calibration]]:
    """The calibrations `choose` would wait for, started in the background (a failed one
    counts: the next call starts it again)."""
    options = [_option(capacity, workload) for capacity in plans if capacity.fits]
    serving = [o for o in options if o.problem is None and o.estimated_rps > 0]
    contenders = _contenders(serving, screen)
    if len(contenders) < 2:
        return []
    started = [calibration_started(performance.replica_performance(o.plan), workload)
               for o in contenders]
    return [f for f in started if not f.done() or f.exception() is not None]


def chosen_plan(choice: Choice) -> CapacityPlan:
    """The winner, carrying the reason and the candidates for `status.capacityPlan`."""
    return dataclasses.replace(
        choice.plan, degree_reason=choice.reason,
        degree_candidates=tuple(option.to_dict() for option in choice.options))


def _name(option: Option, *, gpu: bool = False) -> str:
    n = option.gpus
    label = f"{n} GPU{'s' if n > 1 else ''}"
    return f"{n} x {option.plan.gpu.key}" if gpu else label


def _reason(best: Option, options: Sequence[Option], workload: Workload) -> str:
    """'4 GPUs: 6.1x the capacity of 2 GPUs for 2x the price; ...' against each other option."""
    how = "calibrated" if best.calibrated_rps is not None else "estimated"
    several = len({o.plan.gpu.key for o in options}) > 1
    parts = [f"{_name(best, gpu=several)} per replica: the lowest cost per request at "
             f"{workload.describe()} ({best.requests_per_second:.2f} req/s per replica, {how}; "
             f"${best.cost_per_request * 1000:.3f} per 1000 requests)"]
    for other in options:
        if other is best:
            continue
        name = _name(other, gpu=several)
        if other.problem is None and other.calibrated_rps is None:
            name += " (estimated)"
        price = other.plan.cost_per_hour / best.plan.cost_per_hour
        if other.problem is not None:
            parts.append(f"{name} miss the SLO ({other.problem})")
        elif other.plan.cost_per_hour < best.plan.cost_per_hour:
            ratio = best.requests_per_second / other.requests_per_second
            parts.append(f"{ratio:.1f}x the capacity of {name} for {1 / price:.2g}x the price")
        else:
            ratio = other.requests_per_second / best.requests_per_second
            parts.append(f"{name} would carry {ratio:.2g}x for {price:.2g}x the price")
    return "; ".join(parts)


def choice_inputs(plans: Sequence[CapacityPlan], workload: Workload) -> str:
    """A hash of everything a choice among `plans` depends on, and of the method."""
    text = repr((CHOICE_METHOD, workload, [p for p in plans if p.fits]))
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def plan_auto(
    model: catalog.ModelArchitecture,
    gpus: Sequence[catalog.GpuType],
    workload: Workload,
    *,
    known: catalog.Catalog | None = None,
    screen: float = SCREEN,
    decided: Decided | None = None,
    wait: bool = True,
    **plan_options: Any,
) -> CapacityPlan:
    """Plan `model` at the cheapest (GPU type, degree) per request among `gpus`.

    `plan_options` go to `plan.plan_replica`. When nothing fits, the plan of the first GPU
    type at its largest degree says why (`fits=False`, `reason`). `decided` is an earlier
    choice: taken as it is when it was made from the same inputs. `wait=False` raises
    `CalibrationPending` rather than wait for a calibration the choice needs; those it
    needs are then computing in the background, and a later call finds them.
    """
    plans = [plan.plan_replica(model, gpu, gpus_per_replica=tp, known=known, **plan_options)
             for gpu in gpus for tp in parallelism.valid_tp_degrees(model, gpu)]
    inputs = choice_inputs(plans, workload)
    if decided is not None and decided.inputs == inputs:
        earlier = next((p for p in plans if p.fits and p.gpu.key == decided.gpu
                        and p.gpus_per_replica == decided.gpus_per_replica), None)
        if earlier is not None:
            return dataclasses.replace(earlier, degree_reason=decided.reason,
                                       degree_candidates=decided.candidates,
                                       degree_inputs=inputs)
    if not wait and (pending := _pending(plans, workload, screen)):
        raise CalibrationPending(pending)
    choice = choose(plans, workload, screen=screen)
    if choice is None:
        return plan.plan_replica(model, gpus[0], known=known, **plan_options)
    return dataclasses.replace(chosen_plan(choice), degree_inputs=inputs)


@dataclasses.dataclass(frozen=True)
class Decided:
    """An earlier choice as the plan recorded it (`CapacityPlan.to_dict()`'s fields)."""

    inputs: str
    gpu: str
    gpus_per_replica: int
    reason: str | None = None
    candidates: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_plan_dict(cls, record: Any) -> Decided | None:
        """From a planner dict (snake_case); None when it holds no choice."""
        if not isinstance(record, dict) or not record.get("gpus_per_replica_inputs"):
            return None
        try:
            return cls(inputs=str(record["gpus_per_replica_inputs"]), gpu=str(record["gpu"]),
                       gpus_per_replica=int(record["gpus_per_replica"]),
                       reason=record.get("gpus_per_replica_reason"),
                       candidates=tuple(dict(c) for c in
                                        record.get("gpus_per_replica_candidates") or ()))
        except (KeyError, TypeError, ValueError):
            return None
