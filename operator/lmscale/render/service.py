"""The Service in front of the ready replicas."""

from __future__ import annotations

from typing import Any

from lmscale.api import LanguageModelDeployment
from lmscale.render import activation, deployment, meta


def render_service(lmd: LanguageModelDeployment, *, fronted: bool = False) -> dict[str, Any]:
    """A Service on `spec.service.port` forwarding to the engine's named port.

    `fronted` (render.activation): no selector, since lmscale writes its EndpointSlice,
    and a label by which the activator finds the Service's ClusterIP: a client that
    addresses the model by IP sends that as its Host.
    """
    spec = lmd.spec.service
    metadata = meta.metadata(lmd)
    if spec.annotations:
        metadata["annotations"] = dict(spec.annotations)
    service: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "type": spec.type.value,
            "selector": meta.selector_labels(lmd.name),
            "ports": [
                {
                    "name": deployment.PORT_NAME,
                    "port": spec.port,
                    "targetPort": deployment.PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }
    if fronted:
        del service["spec"]["selector"]
        metadata["labels"] = {**metadata["labels"],
                              activation.ACTIVATOR_LABEL: activation.FRONTEND}
    return service
