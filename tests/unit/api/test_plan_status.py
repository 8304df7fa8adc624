"""status.capacityPlan: the planner's figures in the API's camelCase, every key schema'd."""

from __future__ import annotations

from typing import Any

import pytest

from lmscale.api.plan_status import CapacityPlanStatus, capacity_plan_status
from lmscale.planner.plan import plan_replica

PLANS = [
    pytest.param("llama-3.1-8b", "nvidia-h100-80gb", {}, id="8b-h100"),
    pytest.param("llama-3.1-70b", "nvidia-h100-80gb", {"gpus_per_replica": 4}, id="70b-tp4"),
    pytest.param("llama-3.1-70b", "nvidia-l4", {"gpus_per_replica": 1}, id="does-not-fit"),
]
AUTOSCALING = {"target_in_flight_per_replica": 12.5, "requests_per_second_per_replica": 2.1,
               "prompt_tokens_per_second_per_replica": 4000,
               "ttft_p95_seconds_at_target": 0.31, "method": "calibrated"}


def _keys(data: dict[str, Any], prefix: str = "") -> set[str]:
    found = set()
    for key, value in data.items():
        found.add(prefix + key)
        if isinstance(value, dict):
            found |= _keys(value, f"{prefix}{key}.")
    return found


def _camel(path: str) -> str:
    return ".".join(p.split("_")[0] + "".join(w.title() for w in p.split("_")[1:])
                    for p in path.split("."))


@pytest.mark.parametrize(("model", "gpu", "kwargs"), PLANS)
def test_every_planner_key_has_a_status_field(model: str, gpu: str, kwargs: Any) -> None:
    """A key the planner adds without a field here would be dropped from status: add it to
    lmscale.api.plan_status (camelCase alias comes from the snake_case name)."""
    plan = plan_replica(model, gpu, **kwargs).to_dict()
    status = capacity_plan_status(plan, AUTOSCALING)
    wanted = {_camel(k) for k in _keys({**plan, "autoscaling": AUTOSCALING})
              if _value(plan | {"autoscaling": AUTOSCALING}, k) is not None}
    assert wanted - _keys(status) == set()


def _value(data: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        data = data[part]
    return data


def test_status_is_camel_case_and_round_trips() -> None:
    status = capacity_plan_status(plan_replica("llama-3.1-8b", "nvidia-h100-80gb").to_dict())
    assert status["gpusPerReplica"] == 1 and status["memoryPerGpu"]["kvCacheBytes"] > 0
    assert not any("_" in key for key in _keys(status))
    assert CapacityPlanStatus.model_validate(status).to_dict() == status


def test_auto_says_why_in_status() -> None:
    from lmscale.planner import auto, catalog

    chosen = auto.plan_auto(catalog.model("llama-3.1-70b"), [catalog.gpu("nvidia-h100-80gb")],
                            auto.Workload(1.0, 0.1, 1024, 256), context=8192)
    status = capacity_plan_status(chosen.to_dict())
    assert status["gpusPerReplicaReason"].startswith(f"{chosen.gpus_per_replica} GPUs")
    candidates = status["gpusPerReplicaCandidates"]
    assert [c["gpusPerReplica"] for c in candidates] == [2, 4, 8]
    assert all(c["requestsPerGpuHour"] > 0 and "costPer1000Requests" in c for c in candidates)


def test_the_autoscalers_summary_and_calibration_are_schemad() -> None:
    """The scaler writes status.capacityPlan.autoscaling (with the calibration a restarted
    operator adopts): every key must have a field, or the apiserver refuses the write."""
    from lmscale.api.plan_status import PlanAutoscaling, autoscaling_status
    from lmscale.scaler.policy_spec import from_status, to_status
    from lmscale.sim.calibrate import Calibration

    cal = Calibration(6.5, 2.25, 0.41, ((1.0, 0.1), (6.5, 0.41)), prompt_tokens_rate=900.0)
    summary = {**AUTOSCALING, "calibration": to_status(cal, "inputs-hash")}
    status = autoscaling_status(summary)
    assert _keys(status) >= {_camel(k) for k in _keys(AUTOSCALING)} | {
        f"calibration.{k}" for k in to_status(cal, "h")}
    assert from_status(status["calibration"], "inputs-hash") == cal  # adopted after restart
    assert PlanAutoscaling.model_validate(status).to_dict() == status


def test_fallback_plans_follow_the_primary_fields() -> None:
    """The primary's fields stay where they were; each fallback type is one list entry."""
    primary = plan_replica("llama-3.1-8b", "nvidia-h100-80gb").to_dict()
    a100 = plan_replica("llama-3.1-8b", "nvidia-a100-80gb", gpus_per_replica=2).to_dict()
    status = capacity_plan_status(primary, fallbacks=[a100])
    assert status["gpu"] == "nvidia-h100-80gb" and status["gpusPerReplica"] == 1
    (entry,) = status["fallbacks"]
    assert entry["gpu"] == "nvidia-a100-80gb" and entry["gpusPerReplica"] == 2
    assert entry["gpuProductLabel"] == "NVIDIA-A100-SXM4-80GB"
    assert entry["costPerHour"] > 0 and entry["kvCapacityTokens"] > 0
    assert "fallbacks" not in capacity_plan_status(primary)
