"""`spec.service` and `spec.ingress`: how clients reach the replicas."""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import Field

from lmscale.api import schema
from lmscale.api.schema import Rule, StrictBool, StrictInt

Annotations = dict[Annotated[str, Field(max_length=316)], Annotated[str, Field(max_length=65536)]]
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
