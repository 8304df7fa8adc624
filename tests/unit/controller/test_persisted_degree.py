"""`gpusPerReplica: auto` is chosen once: a restarted operator keeps the choice that status
records while its inputs are the same, and calibrates nothing for it on a handler thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from lmscale.api.plan_status import capacity_plan_status
from lmscale.controller import desired
from lmscale.controller.desired import Desired, desired_state
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
