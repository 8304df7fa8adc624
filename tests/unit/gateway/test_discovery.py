"""The activator's cluster table: per-pod backends from EndpointSlices, weighted by capacity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lmscale.gateway import discovery
from lmscale.render import activation

CLUSTER_IP = "http://10.96.0.9:80"


def service(model: str = "chat", namespace: str = "ml") -> dict[str, Any]:
    return {"metadata": {"name": f"{model}-pods", "namespace": namespace,
                         "labels": {"lmscale.dev/deployment": model,
                                    activation.ACTIVATOR_LABEL: activation.BACKEND},
                         "annotations": {activation.SERVED_ANNOTATION: model}},
            "spec": {"clusterIP": "10.96.0.9",
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


def endpoint(ip: str, pod: str | None = None, *, ready: bool | None = True,
             terminating: bool = False, namespace: str | None = None) -> dict[str, Any]:
    conditions: dict[str, Any] = {"terminating": terminating}
    if ready is not None:
        conditions["ready"] = ready
    out: dict[str, Any] = {"addresses": [ip], "conditions": conditions}
    if pod:
        out["targetRef"] = {"kind": "Pod", "name": pod, **({"namespace": namespace}
                                                          if namespace else {})}
    return out


def slice_(*endpoints: dict[str, Any], model: str = "chat", namespace: str = "ml",
           name: str = "", family: str = "IPv4", port: int = 8000,
           port_name: str = "http") -> dict[str, Any]:
    return {"metadata": {"name": name or f"{model}-pods-abcde", "namespace": namespace,
                         "labels": {activation.SERVICE_NAME_LABEL: f"{model}-pods"}},
            "addressType": family,
            "ports": [{"name": "metrics", "port": 9400, "protocol": "TCP"},
                      {"name": port_name, "port": port, "protocol": "TCP"}],
            "endpoints": list(endpoints)}


def pod(name: str, capacity: str | None = None, *, model: str = "chat",
        namespace: str = "ml") -> dict[str, Any]:
    notes = {"lmscale.dev/capacity": capacity} if capacity is not None else {}
    return {"metadata": {"name": name, "namespace": namespace, "annotations": notes,
                         "labels": {"lmscale.dev/deployment": model}}}


def route(slices: list[dict[str, Any]], pods: Sequence[dict[str, Any]] = (),
          name: str = "ml/chat") -> tuple[tuple[str, ...], tuple[float, ...]]:
    table = discovery.table_of([service()], {}, slices, pods)
    found = table[name]
    return found.backends, found.capacities


def test_only_ready_endpoints_that_are_not_terminating_are_backends() -> None:
    backends, _ = route([slice_(endpoint("10.1.0.1", "a"), endpoint("10.1.0.2", "b", ready=False),
                                endpoint("10.1.0.3", "c", terminating=True),
                                endpoint("10.1.0.4", "d", ready=None))])
    # an unset `ready` reads as ready (the EndpointSlice API's rule)
    assert backends == ("http://10.1.0.1:8000", "http://10.1.0.4:8000")


def test_the_port_is_the_slices_port_named_like_the_services() -> None:
    backends, _ = route([slice_(endpoint("10.1.0.1", "a"), port=8123)])
    assert backends == ("http://10.1.0.1:8123",)
    # a slice without the Service's port name has no backend for it: the ClusterIP serves
    assert route([slice_(endpoint("10.1.0.1", "a"), port_name="grpc")])[0] == (CLUSTER_IP,)


def test_backends_weigh_their_pods_capacity() -> None:
    backends, capacities = route(
        [slice_(endpoint("10.1.0.2", "l4"), endpoint("10.1.0.1", "h100"))],
        [pod("h100", "30"), pod("l4", "10.5")])
    assert dict(zip(backends, capacities, strict=True)) == {
        "http://10.1.0.1:8000": 30.0, "http://10.1.0.2:8000": 10.5}


def test_a_pod_without_a_capacity_counts_as_the_median_of_the_others() -> None:
    backends, capacities = route(
        [slice_(*(endpoint(f"10.1.0.{i}", f"p{i}") for i in range(1, 6)))],
        [pod("p1", "30"), pod("p2", "10"), pod("p3", "12"), pod("p4"),
         pod("p5", "not-a-number")])
    assert capacities == (30.0, 10.0, 12.0, 12.0, 12.0)
    assert backends[3:] == ("http://10.1.0.4:8000", "http://10.1.0.5:8000")


def test_without_any_capacity_the_backends_are_unweighted() -> None:
    backends, capacities = route([slice_(endpoint("10.1.0.1", "a"), endpoint("10.1.0.2", "b"))],
                                 [pod("a"), pod("b")])
    assert len(backends) == 2 and capacities == ()


def test_no_ready_endpoint_or_no_slice_falls_back_to_the_cluster_ip() -> None:
    assert route([]) == ((CLUSTER_IP,), ())
    assert route([slice_(endpoint("10.1.0.1", "a", ready=False))]) == ((CLUSTER_IP,), ())
    assert route([slice_()]) == ((CLUSTER_IP,), ())  # at zero: the controller's empty slice
    # the Service alone, as before per-pod discovery
    only = discovery.route_of(service())
    assert only is not None and only.backends == (CLUSTER_IP,)


def test_models_never_share_pods() -> None:
    services = [service("chat"), service("chat-x"), service("chat", namespace="other")]
    slices = [slice_(endpoint("10.1.0.1", "chat-1"), model="chat"),
              # a slice of chat-x naming chat's pod (stale or hand-written) and its own
              slice_(endpoint("10.1.0.1", "chat-1"), endpoint("10.1.0.9", "x-1"),
                     model="chat-x"),
              slice_(endpoint("10.2.0.1", "chat-1"), model="chat", namespace="other")]
    pods = [pod("chat-1", "30"), pod("x-1", "5", model="chat-x"),
            pod("chat-1", "7", namespace="other")]
    table = discovery.table_of(services, {}, slices, pods)
    assert table["ml/chat"].backends == ("http://10.1.0.1:8000",)
    assert table["ml/chat"].capacities == (30.0,)
    assert table["ml/chat-x"].backends == ("http://10.1.0.9:8000",)
    assert table["ml/chat-x"].capacities == (5.0,)
    # same pod name, another namespace: its own pod and capacity
    assert table["other/chat"].backends == ("http://10.2.0.1:8000",)
    assert table["other/chat"].capacities == (7.0,)


def test_a_dual_stack_pod_is_one_backend_and_ipv6_is_bracketed() -> None:
    backends, _ = route([slice_(endpoint("fd00::1", "a"), family="IPv6", name="chat-pods-v6"),
                         slice_(endpoint("10.1.0.1", "a"), name="chat-pods-v4")])
    assert backends == ("http://10.1.0.1:8000",)
    backends, _ = route([slice_(endpoint("fd00::1", "a"), family="IPv6")])
    assert backends == ("http://[fd00::1]:8000",)


def test_a_static_model_wins_over_the_cluster() -> None:
    from lmscale.gateway.routes import ModelRoute

    static = ModelRoute(name="ml/chat", backends=("http://pinned:8000",))
    table = discovery.table_of([service()], {static.name: static},
                               [slice_(endpoint("10.1.0.1", "a"))], [])
    assert table["ml/chat"] is static


def test_the_table_is_the_same_for_the_same_cluster_in_another_order() -> None:
    """Equal tables are not re-applied: order of lists must not make a new one."""
    slices = [slice_(endpoint("10.1.0.2", "b"), endpoint("10.1.0.1", "a"), name="s1"),
              slice_(endpoint("10.1.0.3", "c"), name="s2")]
    pods = [pod("a", "3"), pod("b", "2"), pod("c", "1")]
    assert route(slices, pods) == route(slices[::-1], pods[::-1])


def front(model: str, namespace: str, *ips: str) -> dict[str, Any]:
    """A fronted model's own Service, as render.service writes it (the apiserver's IPs)."""
    return {"metadata": {"name": model, "namespace": namespace,
                         "labels": {"lmscale.dev/deployment": model,
                                    activation.ACTIVATOR_LABEL: activation.FRONTEND}},
            "spec": {"clusterIP": ips[0], "clusterIPs": list(ips),
                     "ports": [{"name": "http", "port": 80}]}}


def test_a_request_to_a_models_cluster_ip_is_that_models_though_others_serve_its_name() -> None:
    from lmscale.gateway import routes

    services = [service(namespace="team-a"), front("chat", "team-a", "10.96.0.21", "fd00::21"),
                service(namespace="team-b"), front("chat", "team-b", "10.96.0.22")]
    table = discovery.table_of(services, {})
    assert set(table) == {"team-a/chat", "team-b/chat"}  # the own Services are no routes
    assert routes.resolve(table, host="10.96.0.22:80", model="chat") == "team-b/chat"
    assert routes.resolve(table, host="10.96.0.21", model="chat") == "team-a/chat"
    assert routes.resolve(table, host="[fd00::21]:80", model="chat") == "team-a/chat"
    # by name alone the two namespaces stay ambiguous, as before
    assert routes.resolve(table, host="unknown", model="chat") is None
