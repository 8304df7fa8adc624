"""`spec.service` and `spec.ingress`: how clients reach the replicas."""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import Field

from lmscale.api import schema
from lmscale.api.schema import Rule, StrictBool, StrictInt

Annotations = dict[Annotated[str, Field(max_length=316)], Annotated[str, Field(max_length=65536)]]
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
HOST_PATTERN = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


class ServiceType(enum.StrEnum):
    """core/v1 Service type."""

    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"


class Service(schema.Schema):
    """The Service in front of the ready replicas."""

    type: ServiceType = Field(
        default=ServiceType.CLUSTER_IP, description="ClusterIP, NodePort or LoadBalancer."
    )
    port: StrictInt = Field(
        default=80,
        ge=1,
        le=65535,
        description="Port the Service exposes; it forwards to the engine port.",
    )
    annotations: Annotations = Field(
        default_factory=dict,
        description="Annotations on the Service, e.g. for a cloud load balancer.",
        json_schema_extra={"maxProperties": 64},
    )


class LoadBalancing(enum.StrEnum):
    """How the ingress controller spreads requests over replicas."""

    ROUND_ROBIN = "round_robin"
    EWMA = "ewma"
    LEAST_REQUEST = "least_request"


class Ingress(schema.Schema):
    """An Ingress in front of the Service."""

    enabled: StrictBool = Field(default=False, description="Create an Ingress.")
    class_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        description=(
            "IngressClass name, e.g. nginx (ingress-nginx) or haproxy. Default: the "
            "cluster's default class. loadBalancing is applied for nginx and haproxy."
        ),
    )
    host: str | None = Field(
        default=None,
        max_length=253,
        pattern=HOST_PATTERN,
        description="Host name clients use, e.g. chat.example.com; required when enabled.",
    )
    paths: list[Annotated[str, Field(pattern=r"^/", max_length=1024)]] = Field(
        default_factory=lambda: ["/"],
        min_length=1,
        max_length=16,
        description="Path prefixes routed to the model, each starting with /. Default: /.",
    )
    tls_secret_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=schema.DNS_SUBDOMAIN_PATTERN,
        description="Secret holding the TLS certificate for host; terminates HTTPS at the ingress.",
    )
    annotations: Annotations = Field(
        default_factory=dict,
        description=(
            "Annotations on the Ingress; they override the ones lmscale sets "
            "(load balancing, streaming timeouts)."
        ),
        json_schema_extra={"maxProperties": 64},
    )
    load_balancing: LoadBalancing | None = Field(
        default=None,
        description=(
            "How requests spread over replicas: round_robin; ewma (latency-weighted, suits "
            "requests of very uneven cost; nginx only); least_request (fewest open "
            "requests; haproxy only). Applied for className nginx and haproxy. Default: "
            "ewma for nginx, least_request for haproxy."
        ),
    )

    rules = (
        Rule(
            cel="!self.enabled || has(self.host)",
            message="ingress.host is required when ingress.enabled is true",
            check=lambda i: not i.enabled or i.host is not None,
            field=".host",
            reason="FieldValueRequired",
        ),
        Rule(
            cel="!has(self.tlsSecretName) || has(self.host)",
            message="ingress.tlsSecretName needs ingress.host: a certificate is for a host name",
            check=lambda i: i.tls_secret_name is None or i.host is not None,
            field=".host",
            reason="FieldValueRequired",
        ),
        Rule(
            cel=(
                "!has(self.className) || !has(self.loadBalancing) "
                "|| self.className != 'nginx' || self.loadBalancing != 'least_request'"
            ),
            message=(
                "ingress.loadBalancing least_request is not available in ingress-nginx; "
                "use ewma or round_robin"
            ),
            check=lambda i: (
                not (i.class_name == "nginx" and i.load_balancing is LoadBalancing.LEAST_REQUEST)
            ),
            field=".loadBalancing",
        ),
        Rule(
            cel=(
                "!has(self.className) || !has(self.loadBalancing) "
                "|| self.className != 'haproxy' || self.loadBalancing != 'ewma'"
            ),
            message=(
                "ingress.loadBalancing ewma is not available in HAProxy ingress controllers; "
                "use least_request or round_robin"
            ),
            check=lambda i: (
                not (i.class_name == "haproxy" and i.load_balancing is LoadBalancing.EWMA)
            ),
            field=".loadBalancing",
        ),
    )


class RoutingMode(enum.StrEnum):
    """What lmscale puts in front of the Service."""

    INGRESS = "ingress"
    GATEWAY = "gateway"
    INFERENCE_POOL = "inferencePool"


class ActivatorMode(enum.StrEnum):
    """When the activator is in the request path of a model it fronts (render.activation)."""

    WHEN_SCALED_TO_ZERO = "whenScaledToZero"
    ALWAYS = "always"


class ParentRef(schema.Schema):
    """A Gateway (gateway.networking.k8s.io) the HTTPRoute attaches to."""

    name: str = Field(min_length=1, max_length=253, description="The Gateway's name.")
    namespace: str | None = Field(
        default=None, min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN,
        description="The Gateway's namespace. Default: the model's namespace.")
    section_name: str | None = Field(
        default=None, min_length=1, max_length=253, pattern=schema.DNS_SUBDOMAIN_PATTERN,
        description="A listener of the Gateway, by name. Default: every listener.")


class EndpointPicker(schema.Schema):
    """The endpoint picker (EPP) that an InferencePool sends each request's choice to."""

    image: str | None = Field(
        default=None, min_length=1, max_length=1024,
        description=(
            "Container image of the endpoint picker. Default: the operator's setting "
            "(the chart's routing.endpointPickerImage, llm-d's inference scheduler)."))
    replicas: StrictInt = Field(
        default=1, ge=1, le=10,
        description=(
            "Endpoint picker replicas. Each scrapes every pod and picks on its own (no "
            "leader election, which would need Lease write access for the picker)."))


class Routing(schema.Schema):
    """How requests reach the model: an Ingress, a Gateway API HTTPRoute, or an InferencePool."""

    mode: RoutingMode = Field(
        default=RoutingMode.INGRESS,
        description=(
            "ingress: spec.ingress as set (the default). gateway: an HTTPRoute to the Service, "
            "attached to parentRefs. inferencePool: an InferencePool over the model's pods, its "
            "endpoint picker (queue- and KV-cache-aware) and an HTTPRoute to the pool."))
    parent_refs: list[ParentRef] = Field(
        default_factory=list, max_length=32,
        description="Gateways the HTTPRoute attaches to; required for gateway and inferencePool.")
    hostnames: list[Annotated[str, Field(max_length=253, pattern=HOST_PATTERN)]] = Field(
        default_factory=list, max_length=16,
        description="Host names the HTTPRoute matches. Default: every host of the Gateway.")
    paths: list[Annotated[str, Field(pattern=r"^/", max_length=1024)]] = Field(
        default_factory=lambda: ["/"], min_length=1, max_length=16,
        description="Path prefixes routed to the model, each starting with /. Default: /.")
    request_timeout_seconds: StrictInt = Field(
        default=3600, ge=1, le=86400,
        description=(
            "Longest a request (a whole token stream) may take at the Gateway. Default 3600: "
            "Gateway implementations otherwise cut long streams (Envoy after 15 s)."))
    endpoint_picker: EndpointPicker = Field(
        default_factory=EndpointPicker,
        description="The endpoint picker of mode inferencePool.")
    hold_timeout_seconds: StrictInt | None = Field(
        default=None, ge=1, le=3600,
        description=(
            "With scaling.scaleToZero and the activator installed: how long the activator "
            "holds a request that arrives while the model has no ready replica (a cold start "
            "to wait out). Past it the request is answered 503 with Retry-After. Default: "
            "300 s or 1.5x the planned cold start (status.capacityPlan), whichever is longer, "
            "so the first request outlives the cold start the plan expects."))
    activator: ActivatorMode = Field(
        default=ActivatorMode.WHEN_SCALED_TO_ZERO,
        description=(
            "With the activator installed: whenScaledToZero (the default) puts it in the "
            "request path of a model with scaling.scaleToZero only while no replica is "
            "Ready; always keeps the model's Service on the activator, which forwards to "
            "<model>-pods, so every request is counted at the front door and the scaler "
            "reads the arrival rate at any replica count (about 2 ms more per request). "
            "Not with mode inferencePool, whose pool picks pods past any Service."))

    rules = (
        Rule(
            cel="self.mode == 'ingress' || (has(self.parentRefs) && size(self.parentRefs) > 0)",
            message=(
                "routing.parentRefs: name at least one Gateway for routing.mode gateway or "
                "inferencePool"),
            check=lambda r: r.mode is RoutingMode.INGRESS or len(r.parent_refs) > 0,
            field=".parentRefs",
            reason="FieldValueRequired",
        ),
        Rule(
            cel="self.activator != 'always' || self.mode != 'inferencePool'",
            message=(
                "routing.activator always needs a mode that reaches the pods through the "
                "Service (ingress or gateway): an InferencePool picks pods itself"),
            check=lambda r: (r.activator is not ActivatorMode.ALWAYS
                             or r.mode is not RoutingMode.INFERENCE_POOL),
            field=".activator",
        ),
    )
