"""The activator's table from the cluster, and its wake requests to the operator (I/O).

Every model behind the activator has a `<model>-pods` Service that lmscale writes with the
label `lmscale.dev/activator: backend` (render.activation): its ClusterIP and port are the
backend, its annotations the host names, served model name and hold timeout. The activator
lists those Services every few seconds (one label-selected list served from the
apiserver's cache), so every replica serves every model without a restart; the `--model`
flags are kept beside them.

A request held for a model with no ready backend asks the operator to wake the model: a
merge patch of one annotation (the time) on its LanguageModelDeployment, which the
operator watches and answers with a scaling cycle at once. It is repeated while requests
stay held, at most once per `interval`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from lmscale.gateway import routes
from lmscale.gateway.proxy import Gateway
from lmscale.k8s import resources
from lmscale.k8s.client import Kube
from lmscale.render import activation

log = logging.getLogger(__name__)
SELECTOR = f"{activation.ACTIVATOR_LABEL}={activation.BACKEND}"
DEPLOYMENT_LABEL = "lmscale.dev/deployment"


def route_of(service: Mapping[str, Any]) -> routes.ModelRoute | None:
    """One model's route from its `<model>-pods` Service (pure); None if it is incomplete."""
    meta = service.get("metadata") or {}
    spec = service.get("spec") or {}
    namespace, model = meta.get("namespace"), (meta.get("labels") or {}).get(DEPLOYMENT_LABEL)
    ports = spec.get("ports") or []
    if not namespace or not model or not ports or not ports[0].get("port"):
        return None
    ip = spec.get("clusterIP")
    # the ClusterIP needs no cluster DNS; a headless Service would have none
    host = ip if ip and ip != "None" else f"{meta.get('name')}.{namespace}.svc"
    if ":" in host:
        host = f"[{host}]"
    notes = meta.get("annotations") or {}
    try:
        hold = float(notes[activation.HOLD_ANNOTATION])
    except (KeyError, ValueError):
        hold = None
    served = notes.get(activation.SERVED_ANNOTATION)
    return routes.ModelRoute(
        name=f"{namespace}/{model}", backends=(f"http://{host}:{int(ports[0]['port'])}",),
        hosts=frozenset(h.lower() for h in notes.get(activation.HOSTS_ANNOTATION, "").split(",")
                        if h),
        served=frozenset({served}) if served else frozenset(), hold_timeout_s=hold)


def table_of(services: Iterable[Mapping[str, Any]],
             static: Mapping[str, routes.ModelRoute]) -> dict[str, routes.ModelRoute]:
    """The --model routes and the cluster's; a host two models claim routes to neither."""
    found = dict(static)
    for service in services:
        route = route_of(service)
        if route is not None and route.name not in found:
            found[route.name] = route
    claims: dict[str, int] = {}
    for route in found.values():
        for host in route.hosts:
            claims[host] = claims.get(host, 0) + 1
    shared = {h for h, n in claims.items() if n > 1}
    if shared:
        log.warning("host names claimed by several models, routed by the body's model field "
                    "only: %s", ", ".join(sorted(shared)))
        found = {name: dataclasses.replace(r, hosts=r.hosts - shared)
                 for name, r in found.items()}
    return found


class Waker:
    """Asks the operator to wake a model (`namespace/name`), at most once per interval."""

    def __init__(self, kube: Kube, *, interval_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.kube, self.interval_s, self.clock = kube, interval_s, clock
        self._last: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, model: str) -> None:
        namespace, sep, name = model.partition("/")
        now = self.clock()
        if not sep or now - self._last.get(model, -self.interval_s) < self.interval_s:
            return
        self._last[model] = now
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(self._patch, namespace, name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _patch(self, namespace: str, name: str) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        try:
            self.kube.merge_patch(resources.LMDS, namespace=namespace, name=name, patch={
                "metadata": {"annotations": {activation.WAKE_ANNOTATION: stamp}}})
        except Exception as error:  # noqa: BLE001 - the next held request asks again
            log.warning("could not ask the operator to wake %s/%s: %s", namespace, name, error)


async def follow(gateway: Gateway, kube: Kube, *, static: Mapping[str, routes.ModelRoute],
                 waker: Waker | None, interval_s: float = 5.0) -> None:
    """Keep the gateway's table in step with the cluster; repeat wake requests while held."""
    current: dict[str, routes.ModelRoute] | None = None
    while True:
        try:
            services = await asyncio.to_thread(kube.list, resources.SERVICES,
                                               label_selector=SELECTOR)
            table = table_of(services, static)
            if table != current:
                gateway.set_routes(table)
                log.info("serving %d model(s): %s", len(table), ", ".join(sorted(table)))
                current = table
        except Exception as error:  # noqa: BLE001 - keep serving the table we have
            log.warning("could not list the models behind the activator: %s", error)
        if waker is not None:
            for model in list(gateway.models.values()):
                if model.waiting and not model.ready_backends():
                    waker(model.name)
        await asyncio.sleep(interval_s)
