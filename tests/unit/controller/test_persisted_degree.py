"""`gpusPerReplica: auto` is chosen once: a restarted operator keeps the choice that status
records while its inputs are the same, and calibrates nothing for it on a handler thread."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from types import SimpleNamespace
from typing import Any

import pytest

from lmscale.api.plan_status import capacity_plan_status
from lmscale.controller import desired
from lmscale.controller.desired import Desired, Pending, desired_state
from lmscale.handlers.indexes import lmd_record
from lmscale.planner import auto

# Two degrees of a 1B model on an L4 are close enough that auto calibrates both.
SPEC = {"model": {"name": "meta-llama/Llama-3.2-1B", "architecture": "llama-3.2-1b",
                  "maxContextLength": 4096},
        "accelerator": {"type": "nvidia-l4"},
        "slo": {"ttftP95Ms": 1000, "tpotP95Ms": 100},
        "scaling": {"minReplicas": 1, "maxReplicas": 4}}


def _body(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": "lmscale.dev/v1alpha1", "kind": "LanguageModelDeployment",
            "metadata": {"name": "m", "namespace": "ns", "uid": "u", "generation": 1},
            "spec": spec, "status": status or {}}


def _restart() -> None:
    """What a new operator process starts with: no parsed specs, no calibrations."""
    desired._by_spec.clear()
    auto._calibrations.clear()


@pytest.fixture
def calibrations(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    _restart()
    made: list[object] = []
    real = auto._calibrate

    def counted(perf: Any, workload: auto.Workload) -> Any:
        made.append(perf)
        return real(perf, workload)

    monkeypatch.setattr(auto, "_calibrate", counted)
    yield made
    _restart()


def _choice(outcome: Any) -> tuple[int, str | None, tuple[dict[str, Any], ...]]:
    assert isinstance(outcome, Desired)
    return (outcome.plan.gpus_per_replica, outcome.plan.degree_reason,
            outcome.plan.degree_candidates)


@pytest.mark.calibrated
def test_a_restart_keeps_the_recorded_choice_without_calibrating(
        calibrations: list[object]) -> None:
    first = desired_state(_body(SPEC))
    assert len(calibrations) == 2, "the spec must need a calibrated choice"
    status = {"capacityPlan": capacity_plan_status(first.plan.to_dict())}  # type: ignore[union-attr]

    _restart()
    again = desired_state(_body(SPEC, status))
    assert len(calibrations) == 2  # none more
    assert _choice(again) == _choice(first)
    # The status it writes is the one already there: no write after a restart.
    assert capacity_plan_status(again.plan.to_dict()) == status["capacityPlan"]  # type: ignore[union-attr]


@pytest.mark.calibrated
def test_a_changed_objective_chooses_again(calibrations: list[object]) -> None:
    first = desired_state(_body(SPEC))
    status = {"capacityPlan": capacity_plan_status(first.plan.to_dict())}  # type: ignore[union-attr]
    _restart()
    stricter = {**SPEC, "slo": {"ttftP95Ms": 400, "tpotP95Ms": 60}}
    desired_state(_body(stricter, status))
    assert len(calibrations) > 2


def test_concurrent_equal_inputs_calibrate_once(monkeypatch: pytest.MonkeyPatch) -> None:
    _restart()
    calls: list[float] = []

    def slow(perf: Any, workload: auto.Workload) -> str:
        calls.append(time.monotonic())
        time.sleep(0.2)
        return "calibrated"

    monkeypatch.setattr(auto, "_calibrate", slow)
    workload = auto.Workload(ttft_p95_s=1.0, tpot_p95_s=0.1, mean_prompt_tokens=512,
                             mean_output_tokens=128)
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(auto.calibration(
        "perf", workload))) for _ in range(6)]  # type: ignore[arg-type]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["calibrated"] * 6
    assert len(calls) == 1
    _restart()


@pytest.mark.calibrated
def test_the_operator_never_waits_for_a_degree_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    """`wait=False` answers Pending while the candidates calibrate in the background; once
    they are done the same call answers the choice that waiting would have made."""
    _restart()
    go, timed_out = threading.Event(), []

    def gated(perf: Any, workload: auto.Workload) -> Any:
        if not go.wait(timeout=10):
            timed_out.append(perf)  # the caller waited for the calibration it started
        return SimpleNamespace(rate=3.0 * perf.gpus if perf.gpus > 1 else 2.0)

    monkeypatch.setattr(auto, "_calibrate", gated)
    pending = desired_state(_body(SPEC), wait=False)
    go.set()
    assert isinstance(pending, Pending), pending
    assert "2 candidate degrees calibrating" in pending.message
    asyncio.run(pending.wait())
    assert not timed_out
    chosen = desired_state(_body(SPEC), wait=False)
    assert _choice(chosen)[0] == 2, _choice(chosen)[1]  # 3 req/s per GPU at two, 2 at one
    desired._by_spec.clear()  # the calibrations stay: waiting now costs nothing
    assert _choice(desired_state(_body(SPEC))) == _choice(chosen)
    _restart()


@pytest.mark.calibrated
def test_a_failed_calibration_is_computed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    _restart()
    calls: list[int] = []

    def flaky(perf: Any, workload: auto.Workload) -> Any:
        calls.append(perf.gpus)
        if len(calls) == 1:
            raise RuntimeError("out of memory")
        return SimpleNamespace(rate=1.0 * perf.gpus)

    monkeypatch.setattr(auto, "_calibrate", flaky)
    pending = desired_state(_body(SPEC), wait=False)
    assert isinstance(pending, Pending)
    futures.wait(pending.calibrations)
    assert any(f.exception() is not None for f in pending.calibrations)
    while isinstance(outcome := desired_state(_body(SPEC), wait=False), Pending):
        futures.wait(outcome.calibrations)
    assert isinstance(outcome, Desired) and len(calls) == 3  # the failed one once more
    _restart()


@pytest.mark.calibrated
def test_the_scalers_record_of_a_resource_keeps_its_choice(calibrations: list[object]) -> None:
    """The scaler reads resources from a trimmed index record: after a restart it must find
    the choice there too, or its first cycle would choose (and calibrate) again."""
    first = desired_state(_body(SPEC))
    status = {"capacityPlan": capacity_plan_status(first.plan.to_dict()),  # type: ignore[union-attr]
              "observedGeneration": 1}
    made = len(calibrations)
    _restart()
    record = lmd_record(_body(SPEC, status))
    assert set(record["status"]["capacityPlan"]) <= {
        "gpu", "gpusPerReplica", "gpusPerReplicaInputs", "gpusPerReplicaReason",
        "gpusPerReplicaCandidates"}
    again = desired_state(record, wait=False)
    assert len(calibrations) == made
    assert _choice(again) == _choice(first)
