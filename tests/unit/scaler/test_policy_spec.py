"""A LanguageModelDeployment's scaling section becomes the policy's spec, value for value."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from lmscale.controller.desired import Desired, desired_state
from lmscale.policy import MissingMetricsMode, RuleType
from lmscale.scaler import policy_spec as policy_specs
from lmscale.scaler.policy_spec import calibration, calibration_ready, policy_spec
from lmscale.sim import calibrate


def body(scaling: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "lmscale.dev/v1alpha1", "kind": "LanguageModelDeployment",
            "metadata": {"name": "m", "namespace": "ns", "uid": "u"},
            "spec": {"model": {"name": "m", "architecture": "llama-3.1-8b",
                               "maxContextLength": 8192},
                     "accelerator": {"type": "nvidia-h100-80gb"},
                     "slo": {"ttftP95Ms": 500, "tpotP95Ms": 60},
                     "scaling": scaling}}


def test_behavior_and_missing_metrics_map_through() -> None:
    desired = desired_state(body({
        "minReplicas": 2, "maxReplicas": 9, "tolerance": 0.2,
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 120, "policies": [
            {"type": "Pods", "value": 1, "periodSeconds": 60}]}},
        "onMissingMetrics": {"action": "fallback", "fallbackReplicas": 3}}))
    assert isinstance(desired, Desired)
    spec = policy_spec(desired.lmd, desired.plan, activator=False)
    assert (spec.min_replicas, spec.max_replicas, spec.tolerance) == (2, 9, 0.2)
    assert spec.scale_down.stabilization_window_seconds == 120
    assert [(r.type, r.value, r.period_seconds) for r in spec.scale_down.rules] == [
        (RuleType.PODS, 1, 60)]
    assert spec.on_missing_metrics is MissingMetricsMode.FALLBACK
    assert spec.fallback_replicas == 3
    assert spec.ttft_p95_target_seconds == 0.5
    assert spec.startup_seconds == desired.plan.storage.cold_start_seconds


def test_target_comes_from_the_plan_unless_the_user_sets_one() -> None:
    planned = desired_state(body({"minReplicas": 1, "maxReplicas": 4}))
    fixed = desired_state(body({"minReplicas": 1, "maxReplicas": 4,
                                "targetInFlightPerReplica": 6}))
    assert isinstance(planned, Desired) and isinstance(fixed, Desired)
    assert policy_spec(fixed.lmd, fixed.plan, activator=False).target_per_replica == 6
    # The prefill floor comes with the calibration; a user's own target turns it off.
    assert policy_spec(fixed.lmd, fixed.plan, activator=False).prompt_tokens_per_replica is None
    floor = policy_spec(planned.lmd, planned.plan, activator=False).prompt_tokens_per_replica
    assert floor is not None and floor > 0
    derived = policy_spec(planned.lmd, planned.plan, activator=False).target_per_replica
    assert 1 <= derived <= planned.plan.max_num_seqs
    # A tighter TTFT objective can only lower what one replica may carry.
    tight = body({"minReplicas": 1, "maxReplicas": 4})
    tight["spec"]["slo"]["tpotP95Ms"] = 20
    tighter = desired_state(tight)
    assert isinstance(tighter, Desired)
    assert policy_spec(tighter.lmd, tighter.plan, activator=False).target_per_replica <= derived


def test_readiness_never_waits_for_the_calibration_it_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The scaler asks on every cycle; a slow calibration must not hold it up."""
    started, release = threading.Event(), threading.Event()
    found = calibrate.Calibration(target=5.0, rate=1.0, ttft_p95=0.2, prompt_tokens_rate=9.0)
    calls: list[int] = []

    def slow(*args: Any, **kwargs: Any) -> calibrate.Calibration:
        calls.append(1)
        started.set()
        assert release.wait(timeout=30)
        return found

    monkeypatch.setattr(calibrate, "calibrate", slow)
    spec = body({"minReplicas": 1, "maxReplicas": 4})
    spec["spec"]["slo"]["ttftP95Ms"] = 777  # a key no other test calibrates
    desired = desired_state(spec)
    assert isinstance(desired, Desired)
    assert not calibration_ready(desired.lmd, desired.plan)  # returned while it runs
    assert started.wait(timeout=30)
    assert not calibration_ready(desired.lmd, desired.plan)  # one computation, still running
    # Nothing persisted either: the scaler's next cycle must not take it as at hand.
    assert not policy_specs.adopt(desired.lmd, desired.plan, None)
    release.set()
    assert calibration(desired.lmd, desired.plan) is found
    assert calibration_ready(desired.lmd, desired.plan)
    assert policy_spec(desired.lmd, desired.plan, activator=False).target_per_replica == 5.0
    assert len(calls) == 1


def test_the_calibration_uses_the_resources_own_tolerance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The band the policy holds is the band the target was calibrated for."""
    asked: list[float] = []

    def spy(*args: Any, tolerance: float, **kwargs: Any) -> calibrate.Calibration:
        asked.append(tolerance)
        return calibrate.Calibration(target=7.0, rate=1.0, ttft_p95=0.2, prompt_tokens_rate=9.0)

    monkeypatch.setattr(calibrate, "calibrate", spy)
    wide = body({"minReplicas": 1, "maxReplicas": 4, "tolerance": 0.25})
    wide["spec"]["slo"]["ttftP95Ms"] = 778  # a key no other test calibrates
    desired = desired_state(wide)
    assert isinstance(desired, Desired)
    assert policy_spec(desired.lmd, desired.plan, activator=False).target_per_replica == 7.0
    assert asked == [0.25]


@pytest.mark.parametrize(("activator", "routing", "zero"), [
    pytest.param(True, {}, True, id="behind-the-activator"),
    pytest.param(False, {}, False, id="no-activator-installed"),
    pytest.param(True, {"mode": "inferencePool", "parentRefs": [{"name": "gw"}]}, False,
                 id="inference-pool-routes-around-the-activator"),
])
def test_scale_to_zero_only_where_an_activator_holds_the_first_request(
        activator: bool, routing: dict[str, Any], zero: bool) -> None:
    resource = body({"minReplicas": 1, "maxReplicas": 4, "scaleToZero": {"enabled": True}})
    resource["spec"]["routing"] = routing
    desired = desired_state(resource)
    assert isinstance(desired, Desired)
    assert policy_spec(desired.lmd, desired.plan, activator=activator).scale_to_zero is zero


@pytest.mark.parametrize(("routing", "whole"), [
    ({"activator": "always"}, True), ({"activator": "whenScaledToZero"}, False), ({}, False),
])  # fmt: skip
def test_the_front_door_counts_every_arrival_only_with_the_activator_always(
        routing: dict[str, Any], whole: bool) -> None:
    lmd = body({"minReplicas": 1, "maxReplicas": 4, "targetInFlightPerReplica": 6})
    lmd["spec"]["routing"] = routing
    desired = desired_state(lmd)
    assert isinstance(desired, Desired)
    assert policy_spec(desired.lmd, desired.plan, activator=True).front_door_counts_all is whole
    assert not policy_spec(desired.lmd, desired.plan, activator=False).front_door_counts_all
