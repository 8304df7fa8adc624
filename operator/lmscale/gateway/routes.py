"""Which model a request is for, and the table of models the activator serves. Pure.

A request names its model two ways: the Host it was sent to (the model's Service name when
the Service's endpoints point at the activator) and the OpenAI `model` field of its body.
The Host wins: a client that reached a model's Service meant that model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


class RouteError(ValueError):
    """A --model value that cannot be read; the message says what is expected."""


@dataclass(frozen=True)
class ModelRoute:
    """One model: its name, host names and backend base URLs.

    `name` is the served model name for a --model flag, `namespace/name` for a model learned
    from the cluster (then `served` holds the names its requests' `model` field carries).
    `hold_timeout_s` overrides the activator's --hold-timeout (the model's
    routing.holdTimeoutSeconds). `capacities`, one per backend when given, is what each
    carries at the SLO (its pods' `lmscale.dev/capacity`): the proxy weighs its choice by
    them, so a mixed fleet's slower replicas get their share of the load, not a fast one's.
    """

    name: str
    backends: tuple[str, ...]
    hosts: frozenset[str] = field(default_factory=frozenset)
    served: frozenset[str] = field(default_factory=frozenset)
    hold_timeout_s: float | None = None
    capacities: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.capacities and len(self.capacities) != len(self.backends):
            raise RouteError(f"model {self.name!r}: {len(self.backends)} backends but "
                             f"{len(self.capacities)} capacities")
        if any(not c > 0 for c in self.capacities):
            raise RouteError(f"model {self.name!r}: capacities must be above 0")


CAPACITY = ";capacity="


def parse_model(value: str) -> ModelRoute:
    """`NAME=URL[;capacity=N][,URL...][@HOST[,HOST...]]`, e.g.
    `llama=http://10.0.0.5:8000;capacity=30,http://10.0.0.6:8000;capacity=10@llama.ns.svc`.

    A backend without `;capacity=` counts 1 when others name theirs.
    """
    name, sep, rest = value.partition("=")
    if not sep or not name or not rest:
        raise RouteError(f"--model {value!r}: expected NAME=URL[;capacity=N][,URL...]"
                         "[@HOST[,HOST...]]")
    urls, _, hosts = rest.partition("@")
    backends: list[str] = []
    capacities: list[float] = []
    for item in (u for u in urls.split(",") if u):
        url, given, number = item.partition(CAPACITY)
        url = url.rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise RouteError(f"--model {value!r}: backend {url!r} must start with http://")
        try:
            capacity = float(number) if given else 1.0
        except ValueError:
            capacity = 0.0
        if not capacity > 0 or capacity == float("inf"):
            raise RouteError(f"--model {value!r}: capacity {number!r} of {url} must be a "
                             "number above 0")
        backends.append(url)
        capacities.append(capacity)
    if not backends:
        raise RouteError(f"--model {value!r}: name at least one backend URL")
    weighted = any(CAPACITY in u for u in urls.split(","))
    return ModelRoute(name=name, backends=tuple(backends),
                      hosts=frozenset(h.lower() for h in hosts.split(",") if h),
                      capacities=tuple(capacities) if weighted else ())


def table(routes: list[ModelRoute]) -> dict[str, ModelRoute]:
    """Routes by name; two routes with one name or one host are an error."""
    by_name: dict[str, ModelRoute] = {}
    hosts: dict[str, str] = {}
    for route in routes:
        if route.name in by_name:
            raise RouteError(f"--model {route.name!r} is given twice")
        by_name[route.name] = route
        for host in route.hosts:
            if host in hosts:
                raise RouteError(f"host {host!r} is named by models {hosts[host]!r} and "
                                 f"{route.name!r}")
            hosts[host] = route.name
    return by_name


def body_model(body: bytes) -> str | None:
    """The `model` field of a JSON request body, None when absent or not JSON."""
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        return None
    value = payload.get("model") if isinstance(payload, dict) else None
    return value if isinstance(value, str) else None


def resolve(routes: dict[str, ModelRoute], *, host: str | None, model: str | None) -> str | None:
    """The model a request is for: by Host (port dropped), else by body, else the only one."""
    if host:
        name = (host.rsplit(":", 1)[0] if not host.startswith("[")
                else host.partition("]")[0] + "]").lower()
        for route in routes.values():
            if name in route.hosts:
                return route.name
    if model is not None:
        if model in routes:
            return model
        serving = [r.name for r in routes.values() if model in r.served]
        return serving[0] if len(serving) == 1 else None  # two namespaces: ambiguous
    if len(routes) == 1:
        return next(iter(routes))
    return None
