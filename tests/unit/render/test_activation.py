"""Scale from zero behind the activator: which models, their two Services, and the slice."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.unit.render.builders import lmd, planned

from lmscale import render
from lmscale.controller.pods import PodInfo
from lmscale.gateway import discovery, hold
from lmscale.render import activation

ZERO = {"scaling": {"scaleToZero": {"enabled": True, "idleSeconds": 60}}}
ALWAYS = {"routing": {"activator": "always"}}
ACTIVATOR = activation.Activator((activation.Endpoint("10.1.0.7", "act-a", "lmscale-system"),
                                  activation.Endpoint("10.1.0.3", "act-b", "lmscale-system")),
                                 8080)


def pod(name: str, *, ready: bool = True, ip: str | None = "10.2.0.5",
        terminating: bool = False) -> PodInfo:
    return PodInfo(namespace="team-a", name=name, created=datetime(2026, 1, 1, tzinfo=UTC),
                   ready=ready, ready_since=None, terminating=terminating,
                   unschedulable_message=None, crash_looping=False, deletion_cost=None, ip=ip)


@pytest.mark.parametrize(("patch", "installed", "expected"), [
    pytest.param(ZERO, True, True, id="scale-to-zero-with-an-activator"),
    pytest.param(ZERO, False, False, id="no-activator-installed"),
    pytest.param({}, True, False, id="never-at-zero"),
    pytest.param({**ZERO, "routing": {"mode": "inferencePool", "parentRefs": [{"name": "g"}]}},
                 True, False, id="inference-pool-picks-pods-itself"),
    pytest.param(ALWAYS, True, True, id="always-even-never-at-zero"),
    pytest.param(ALWAYS, False, False, id="always-but-no-activator-installed"),
])  # fmt: skip
def test_which_models_are_behind_the_activator(patch: dict[str, Any], installed: bool,
                                               expected: bool) -> None:
    assert activation.fronted(lmd(patch), activator=installed) is expected


def test_a_model_that_never_scales_to_zero_keeps_its_service_exactly() -> None:
    resource, plan = planned()
    before = render.render_children(resource, plan)
    after = render.render_children(resource, plan, activator=True)
    assert after.present() == before.present()
    assert ("discovery.k8s.io/v1", "EndpointSlice", "chat") in after.absent("chat")


def test_behind_the_activator_the_service_loses_its_selector_and_pods_get_their_own() -> None:
    resource, plan = planned({**ZERO, "ingress": {"enabled": True, "host": "chat.example.com"},
                              "routing": {"holdTimeoutSeconds": 120}})
    children = render.render_children(resource, plan, activator=True)
    assert "selector" not in children.service["spec"]
    assert children.service["metadata"]["name"] == "chat"
    # the activator learns the Service's ClusterIP by this label (a Host that is an IP)
    assert children.service["metadata"]["labels"]["lmscale.dev/activator"] == "frontend"
    assert "lmscale.dev/activator" not in render.render_children(
        resource, plan, activator=False).service["metadata"]["labels"]
    pods = children.pods_service
    assert pods is not None and pods["metadata"]["name"] == "chat-pods"
    assert pods["spec"]["selector"] == {"lmscale.dev/deployment": "chat"}
    assert pods["metadata"]["labels"]["lmscale.dev/activator"] == "backend"
    assert ("v1", "Service", "chat-pods") not in children.absent("chat")
    # what the activator reads from it
    live = {**pods, "spec": {**pods["spec"], "clusterIP": "10.96.0.9"}}
    route = discovery.route_of(live)
    assert route is not None
    assert route.name == "team-a/chat"
    assert route.backends == ("http://10.96.0.9:80",)
    assert route.hold_timeout_s == 120.0
    assert route.served == frozenset({resource.spec.model.name})
    assert {"chat.team-a.svc", "chat.team-a.svc.cluster.local", "chat.example.com"} <= route.hosts


@pytest.mark.parametrize(("pods", "target", "addresses", "port"), [
    pytest.param([], "activator", ["10.1.0.3", "10.1.0.7"], 8080, id="at-zero-the-activator"),
    pytest.param([pod("p1", ready=False)], "activator", ["10.1.0.3", "10.1.0.7"], 8080,
                 id="starting-pod-still-the-activator"),
    pytest.param([pod("p1"), pod("p0", ip="10.2.0.4")], "pods", ["10.2.0.4", "10.2.0.5"], 8000,
                 id="ready-pods-only"),
    pytest.param([pod("p1", terminating=True)], "activator", ["10.1.0.3", "10.1.0.7"], 8080,
                 id="terminating-pod-back-to-the-activator"),
])  # fmt: skip
def test_the_slice_points_at_ready_pods_else_the_activator(
        pods: list[PodInfo], target: str, addresses: list[str], port: int) -> None:
    resource = lmd({**ZERO, "engine": {"kind": "vllm", "port": 8000}})
    slice_ = activation.render_endpoint_slice(resource, pods=pods, activator=ACTIVATOR)
    labels = slice_["metadata"]["labels"]
    assert labels["kubernetes.io/service-name"] == "chat"
    assert labels["endpointslice.kubernetes.io/managed-by"] == "lmscale.dev"
    assert labels["lmscale.dev/endpoints"] == target
    assert [e["addresses"][0] for e in slice_["endpoints"]] == addresses
    assert slice_["ports"] == [{"name": "http", "port": port, "protocol": "TCP"}]


def test_without_activator_endpoints_the_slice_is_empty_not_stale() -> None:
    slice_ = activation.render_endpoint_slice(lmd(ZERO), pods=[],
                                              activator=activation.Activator())
    assert slice_["endpoints"] == []


def test_activator_endpoints_come_from_its_services_slices() -> None:
    found = activation.activator_from_slices([{
        "ports": [{"name": "metrics", "port": 9090}, {"name": "http", "port": 8080}],
        "endpoints": [
            {"addresses": ["10.1.0.7"], "conditions": {"ready": True},
             "targetRef": {"kind": "Pod", "name": "act-a", "namespace": "lmscale-system"}},
            {"addresses": ["10.1.0.9"], "conditions": {"ready": False}},
        ]}])
    assert found.port == 8080
    assert [e.ip for e in found.endpoints] == ["10.1.0.7"]


def test_a_host_two_models_claim_routes_to_neither() -> None:
    def svc(namespace: str, hosts: str) -> dict[str, Any]:
        return {"metadata": {"name": "m-pods", "namespace": namespace,
                             "labels": {"lmscale.dev/deployment": "m"},
                             "annotations": {activation.HOSTS_ANNOTATION: hosts}},
                "spec": {"clusterIP": "10.96.0.1", "ports": [{"port": 80}]}}

    table = discovery.table_of([svc("a", "m.a.svc,chat.example.com"),
                                svc("b", "m.b.svc,chat.example.com")], {})
    assert table["a/m"].hosts == frozenset({"m.a.svc"})
    assert table["b/m"].hosts == frozenset({"m.b.svc"})


@pytest.mark.parametrize(("patch", "pods", "activator", "target"), [
    pytest.param({**ZERO, **ALWAYS}, [pod("p1")], ACTIVATOR, "activator",
                 id="always-stays-on-the-activator-with-a-ready-pod"),
    pytest.param(ALWAYS, [pod("p1"), pod("p0", ip="10.2.0.4")], ACTIVATOR, "activator",
                 id="always-without-scale-to-zero"),
    pytest.param(ALWAYS, [pod("p1")], activation.Activator(), "pods",
                 id="always-but-no-activator-endpoint-the-pods-serve"),
    pytest.param(ALWAYS, [], activation.Activator(), "none", id="always-nothing-ready"),
    pytest.param(ZERO, [pod("p1")], ACTIVATOR, "pods", id="default-follows-the-pods"),
])  # fmt: skip
def test_always_keeps_the_slice_on_the_activator(
        patch: dict[str, Any], pods: list[PodInfo], activator: activation.Activator,
        target: str) -> None:
    resource = lmd({**patch, "engine": {"kind": "vllm", "port": 8000}})
    slice_ = activation.render_endpoint_slice(resource, pods=pods, activator=activator)
    assert slice_["metadata"]["labels"]["lmscale.dev/endpoints"] == target
    if target == "activator":
        assert [e["addresses"][0] for e in slice_["endpoints"]] == ["10.1.0.3", "10.1.0.7"]
        assert slice_["ports"][0]["port"] == 8080


def test_always_gives_a_model_that_never_scales_to_zero_the_activators_services() -> None:
    resource, plan = planned(ALWAYS)
    children = render.render_children(resource, plan, activator=True)
    assert "selector" not in children.service["spec"]
    assert children.pods_service is not None
    assert children.pods_service["metadata"]["name"] == "chat-pods"
    assert ("discovery.k8s.io/v1", "EndpointSlice", "chat") not in children.absent("chat")
    # without an activator installed, always changes nothing
    assert (render.render_children(resource, plan).present()
            == render.render_children(planned()[0], plan).present())


def test_always_is_refused_with_an_inference_pool() -> None:
    with pytest.raises(ValueError, match="routing.activator always"):
        lmd({"routing": {"activator": "always", "mode": "inferencePool",
                         "parentRefs": [{"name": "g"}]}})


def test_without_a_hold_timeout_the_activator_holds_past_the_planned_cold_start() -> None:
    resource, plan = planned(ZERO)
    # a 32B model from slow storage: weights load for longer than the old fixed 300 s
    plan = dataclasses.replace(plan, storage=dataclasses.replace(plan.storage, load_seconds=360.0))
    pods = render.render_children(resource, plan, activator=True).pods_service
    assert pods is not None
    held = float(pods["metadata"]["annotations"][activation.HOLD_ANNOTATION])
    assert held == hold.timeout_for(plan.cold_start_seconds)
    assert held >= plan.cold_start_seconds


@pytest.mark.parametrize(("cold_start", "explicit", "expected"), [
    (60.0, None, 300.0), (307.0, None, 461.0), (307.0, 120.0, 120.0)])
def test_hold_timeout_is_the_spec_or_outlives_the_cold_start(
        cold_start: float, explicit: float | None, expected: float) -> None:
    assert hold.timeout_for(cold_start, explicit) == expected
