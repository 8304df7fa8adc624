"""routing.mode: what each mode renders (HTTPRoute, InferencePool, endpoint picker)."""

from __future__ import annotations

from typing import Any

from tests.unit.render.builders import planned

from lmscale import render
from lmscale.render import inference_pool, meta

GATEWAY = {"mode": "gateway", "parentRefs": [{"name": "gw", "namespace": "gateways"}],
           "hostnames": ["chat.example.com"], "paths": ["/v1"], "requestTimeoutSeconds": 600}
POOL = {"mode": "inferencePool", "parentRefs": [{"name": "gw"}]}


def _children(routing: dict[str, Any], **spec: Any) -> render.Children:
    resource, plan = planned({"routing": routing, **spec})
    return render.render_children(resource, plan)


def _by_kind(children: render.Children) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for m in children.present():
        out.setdefault(m["kind"], []).append(m)
    return out


def test_ingress_mode_renders_no_gateway_objects() -> None:
    children = _children({}, ingress={"enabled": True, "host": "chat.example.com"})
    kinds = set(_by_kind(children))
    assert "Ingress" in kinds
    assert not kinds & {"HTTPRoute", "InferencePool", "ConfigMap", "Role"}


def test_gateway_mode_routes_to_the_service_with_streaming_timeouts() -> None:
    children = _children(GATEWAY, service={"port": 8080})
    route = children.http_route
    assert route is not None and children.inference_pool is None
    assert children.endpoint_picker == ()
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    spec = route["spec"]
    assert spec["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                   "name": "gw", "namespace": "gateways"}]
    assert spec["hostnames"] == ["chat.example.com"]
    rule = spec["rules"][0]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/v1"}}]
    assert rule["backendRefs"] == [{"group": "", "kind": "Service", "name": "chat",
                                    "port": 8080}]
    assert rule["timeouts"] == {"request": "600s", "backendRequest": "600s"}
    assert ("networking.k8s.io/v1", "Ingress", "chat") in children.absent("chat")


def test_inference_pool_mode_selects_the_model_pods_not_the_pickers() -> None:
    children = _children(POOL)
    pool = children.inference_pool
    assert pool is not None
    assert pool["spec"]["selector"] == {"matchLabels": meta.selector_labels("chat")}
    assert pool["spec"]["targetPorts"] == [{"number": 8000}]
    assert pool["spec"]["endpointPickerRef"]["name"] == "chat-epp"
    route = children.http_route
    assert route is not None
    assert route["spec"]["rules"][0]["backendRefs"] == [
        {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "chat"}]
    kinds = _by_kind(children)
    picker = next(d for d in kinds["Deployment"] if d["metadata"]["name"] == "chat-epp")
    pod_labels = picker["spec"]["template"]["metadata"]["labels"]
    # the model's Service and the pool select on this label: the picker pods must not carry it
    assert meta.DEPLOYMENT_LABEL not in pod_labels
    service = next(s for s in kinds["Service"] if s["metadata"]["name"] == "chat-epp")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert children.absent("chat") == [("networking.k8s.io/v1", "Ingress", "chat"),
                                       ("discovery.k8s.io/v1", "EndpointSlice", "chat"),
                                       ("v1", "Service", "chat-pods")]


def _picker_args(children: render.Children) -> tuple[list[str], str]:
    picker = next(m for m in children.endpoint_picker if m["kind"] == "Deployment")
    container = picker["spec"]["template"]["spec"]["containers"][0]
    return list(container["args"]), container["image"]


def test_picker_reads_each_engines_queue_series_and_takes_the_image_from_spec() -> None:
    args, image = _picker_args(_children(POOL))
    assert image == inference_pool.DEFAULT_IMAGE
    assert args[args.index("--total-queued-requests-metric") + 1] == "vllm:num_requests_waiting"
    assert args[args.index("--pool-name") + 1] == "chat"
    sglang = _children({**POOL, "endpointPicker": {"image": "example.com/epp:1"}},
                       engine={"kind": "sglang", "port": 30000})
    args, image = _picker_args(sglang)
    assert image == "example.com/epp:1"
    assert args[args.index("--total-queued-requests-metric") + 1] == "sglang:num_queue_reqs"
    assert sglang.inference_pool is not None
    assert sglang.inference_pool["spec"]["targetPorts"] == [{"number": 30000}]


def test_the_operator_setting_names_the_default_picker_image() -> None:
    resource, plan = planned({"routing": POOL})
    children = render.render_children(resource, plan, endpoint_picker_image="mirror/epp:2")
    assert _picker_args(children)[1] == "mirror/epp:2"
