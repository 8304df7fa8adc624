"""The activator's table from the cluster, and its wake requests to the operator (I/O).

Every model behind the activator has a `<model>-pods` Service that lmscale writes with the
label `lmscale.dev/activator: backend` (render.activation): its annotations are the host
names, served model name and hold timeout. The activator lists those Services every few
seconds (one label-selected list), so every replica serves every model without a restart;
the `--model` flags are kept beside them.

Backends are the model's pods, not its Service: each cycle also lists the EndpointSlices
that carry the same label (the EndpointSlice controller copies a Service's labels onto its
slices, so this is one label-selected list of only the activator's models' slices) and
the metadata of the pods labelled `lmscale.dev/deployment` (PartialObjectMetadataList: no
spec or status). A model's backends are its slices' ready, not terminating endpoints on the
port named like the Service's, each weighted by its pod's `lmscale.dev/capacity` (what
it carries at the SLO; the scaler writes it in a mixed fleet), so the proxy's weighted
least-request gives a slower GPU type's replica its share of the load, not a fast one's.
A pod without the annotation counts as the median of the model's annotated pods (a typical
replica: a new pod not yet calibrated is most likely of the common type), or, when none has
one, every backend counts the same (unweighted). While a model has no ready endpoint known
(at zero, starting, or the slices cannot be read) its backend is the Service's ClusterIP,
as before, so nothing that worked through the Service stops working.

A request held for a model with no ready backend asks the operator to wake the model: a
merge patch of one annotation (the time) on its LanguageModelDeployment, which the
operator watches and answers with a scaling cycle at once. It is repeated while requests
stay held, at most once per `interval`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from lmscale.controller.pods import CAPACITY_ANNOTATION
from lmscale.gateway import routes
from lmscale.gateway.proxy import Gateway
from lmscale.k8s import resources
from lmscale.k8s.client import Kube
from lmscale.render import activation

log = logging.getLogger(__name__)
# The <model>-pods Services (the routes) and the fronted models' own (their ClusterIPs).
SELECTOR = f"{activation.ACTIVATOR_LABEL} in ({activation.BACKEND},{activation.FRONTEND})"
DEPLOYMENT_LABEL = "lmscale.dev/deployment"
# Slices of the activator's <model>-pods Services: the controller copies the Service's labels.
SLICE_SELECTOR = f"{activation.ACTIVATOR_LABEL}={activation.BACKEND}"
POD_SELECTOR = DEPLOYMENT_LABEL  # every model pod, primary and fallback types alike

Key = tuple[str, str]  # (namespace, name)


@dataclasses.dataclass(frozen=True)
class PodMark:
    """What the table needs of a pod: the model it belongs to and its capacity, if any."""

    model: str | None
    capacity: float | None


def capacity_of(text: object) -> float | None:
    """A `lmscale.dev/capacity` value as a weight; None when absent, not a number or not
    above 0 (such a pod counts as a typical one)."""
    try:
        value = float(str(text)) if text is not None else math.nan
    except ValueError:
        return None
    return value if value > 0 and math.isfinite(value) else None


def pod_marks(pods: Iterable[Mapping[str, Any]]) -> dict[Key, PodMark]:
    """Pods (full objects or metadata only) by namespace and name (pure)."""
    found: dict[Key, PodMark] = {}
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("namespace") and meta.get("name"):
            found[(meta["namespace"], meta["name"])] = PodMark(
                model=(meta.get("labels") or {}).get(DEPLOYMENT_LABEL),
                capacity=capacity_of((meta.get("annotations") or {}).get(CAPACITY_ANNOTATION)))
    return found


def slices_by_service(slices: Iterable[Mapping[str, Any]]) -> dict[Key, list[Mapping[str, Any]]]:
    """EndpointSlices by the namespace and name of the Service they belong to (pure)."""
    found: dict[Key, list[Mapping[str, Any]]] = {}
    for body in slices:
        meta = body.get("metadata") or {}
        service = (meta.get("labels") or {}).get(activation.SERVICE_NAME_LABEL)
        if meta.get("namespace") and service:
            found.setdefault((meta["namespace"], service), []).append(body)
    return found


def _url(address: str, port: int) -> str:
    return f"http://[{address}]:{port}" if ":" in address else f"http://{address}:{port}"


def pod_backends(service: Mapping[str, Any], slices: Sequence[Mapping[str, Any]],
                 pods: Mapping[Key, PodMark]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """The Service's ready pods as backend URLs, and their weights (pure).

    Only slices of this Service (namespace and `kubernetes.io/service-name`) count; an
    endpoint is taken when ready (unset reads as ready, as the API says) and not
    terminating, on the slice's port named like the Service's first port, at its first
    address; a pod listed twice (dual-stack slices) counts once, IPv4 first. An endpoint
    whose pod belongs to another model (its `lmscale.dev/deployment`) is left out: a model
    never sends to another's pods. Weights are () when no pod has a capacity; otherwise a
    pod without one weighs the median of those that have one.
    """
    meta = service.get("metadata") or {}
    namespace, name = meta.get("namespace"), meta.get("name")
    model = (meta.get("labels") or {}).get(DEPLOYMENT_LABEL)
    ports = (service.get("spec") or {}).get("ports") or []
    port_name = (ports[0].get("name") or "") if ports else None
    chosen: dict[object, tuple[str, float | None]] = {}
    own = [s for s in slices
           if (s.get("metadata") or {}).get("namespace") == namespace
           and ((s.get("metadata") or {}).get("labels") or {}).get(
               activation.SERVICE_NAME_LABEL) == name]
    own.sort(key=lambda s: (s.get("addressType") != "IPv4",
                            (s.get("metadata") or {}).get("name") or ""))
    for body in own:
        if body.get("addressType") not in ("IPv4", "IPv6") or port_name is None:
            continue
        port = next((p.get("port") for p in body.get("ports") or []
                     if (p.get("name") or "") == port_name
                     and (p.get("protocol") or "TCP") == "TCP"), None)
        if not port:
            continue
        for endpoint in body.get("endpoints") or []:
            conditions = endpoint.get("conditions") or {}
            addresses = endpoint.get("addresses") or []
            if (conditions.get("ready") is False or conditions.get("terminating") is True
                    or not addresses):
                continue
            ref = endpoint.get("targetRef") or {}
            pod_key = ((str(ref.get("namespace") or namespace), str(ref["name"]))
                       if ref.get("kind", "Pod") == "Pod" and ref.get("name") else None)
            mark = pods.get(pod_key) if pod_key else None
            if mark is not None and mark.model is not None and mark.model != model:
                continue
            key: object = pod_key or addresses[0]
            if key not in chosen:
                chosen[key] = (_url(addresses[0], int(port)),
                               mark.capacity if mark is not None else None)
    by_url = dict(sorted(chosen.values(), key=lambda item: item[0]))
    known = [c for c in by_url.values() if c is not None]
    if not known:
        return tuple(by_url), ()
    typical = float(statistics.median(known))
    return tuple(by_url), tuple(typical if c is None else c for c in by_url.values())


def route_of(service: Mapping[str, Any], slices: Sequence[Mapping[str, Any]] = (),
             pods: Mapping[Key, PodMark] | None = None) -> routes.ModelRoute | None:
    """One model's route from its `<model>-pods` Service, its EndpointSlices and its pods'
    marks (pure); None if the Service is incomplete. The backends are the ready pods,
    weighted by capacity (`pod_backends`), else the Service's ClusterIP."""
    meta = service.get("metadata") or {}
    spec = service.get("spec") or {}
    namespace, model = meta.get("namespace"), (meta.get("labels") or {}).get(DEPLOYMENT_LABEL)
    ports = spec.get("ports") or []
    if not namespace or not model or not ports or not ports[0].get("port"):
        return None
    backends, capacities = pod_backends(service, slices, pods or {})
    if not backends:
        ip = spec.get("clusterIP")
        # the ClusterIP needs no cluster DNS; a headless Service would have none
        host = ip if ip and ip != "None" else f"{meta.get('name')}.{namespace}.svc"
        if ":" in host:
            host = f"[{host}]"
        backends, capacities = (f"http://{host}:{int(ports[0]['port'])}",), ()
    notes = meta.get("annotations") or {}
    try:
        hold = float(notes[activation.HOLD_ANNOTATION])
    except (KeyError, ValueError):
        hold = None
    served = notes.get(activation.SERVED_ANNOTATION)
    return routes.ModelRoute(
        name=f"{namespace}/{model}", backends=backends, capacities=capacities,
        hosts=frozenset(h.lower() for h in notes.get(activation.HOSTS_ANNOTATION, "").split(",")
                        if h),
        served=frozenset({served}) if served else frozenset(), hold_timeout_s=hold)


def cluster_ips(service: Mapping[str, Any]) -> set[str]:
    """A Service's ClusterIPs as a Host header names them (IPv6 in brackets); none if headless."""
    spec = service.get("spec") or {}
    ips = {*(spec.get("clusterIPs") or []), spec.get("clusterIP")} - {None, "", "None"}
    return {f"[{ip}]" if ":" in ip else ip for ip in ips}


def table_of(services: Iterable[Mapping[str, Any]],
             static: Mapping[str, routes.ModelRoute],
             slices: Iterable[Mapping[str, Any]] = (),
             pods: Iterable[Mapping[str, Any]] = ()) -> dict[str, routes.ModelRoute]:
    """The --model routes and the cluster's; a host two models claim routes to neither.

    A fronted model's own Service adds its ClusterIPs to the model's hosts: a request sent
    to the Service by IP carries that as its Host, and the body's model name alone is
    ambiguous where two namespaces serve the same one.
    """
    found = dict(static)
    grouped = slices_by_service(slices)
    marks = pod_marks(pods)
    addresses: dict[str, set[str]] = {}
    for service in services:
        meta = service.get("metadata") or {}
        if (meta.get("labels") or {}).get(activation.ACTIVATOR_LABEL) == activation.FRONTEND:
            model = (meta.get("labels") or {}).get(DEPLOYMENT_LABEL)
            addresses.setdefault(f"{meta.get('namespace')}/{model}", set()).update(
                cluster_ips(service))
            continue
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        route = route_of(service, grouped.get(key, []), marks)
        if route is not None and route.name not in found:
            found[route.name] = route
    for name, ips in addresses.items():
        if name in found and ips - found[name].hosts:
            found[name] = dataclasses.replace(found[name], hosts=found[name].hosts | ips)
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


def read_cluster(kube: Kube, *, warned: dict[str, str] | None = None
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The activator's Services, their EndpointSlices and the model pods' metadata: three
    label-selected lists. The Services must be read (an error raises: keep the table you
    have); slices or pods that cannot be read (e.g. RBAC of an older chart) leave the models
    on their ClusterIP or unweighted, with a warning each time the reason changes."""
    warned = {} if warned is None else warned
    services = kube.list(resources.SERVICES, label_selector=SELECTOR)
    slices: list[dict[str, Any]] = []
    pods: list[dict[str, Any]] = []
    if services:
        slices = _optional(warned, "EndpointSlices (models stay on their ClusterIP)",
                           lambda: kube.list(resources.ENDPOINTSLICES,
                                             label_selector=SLICE_SELECTOR))
    if any(s.get("endpoints") for s in slices):
        pods = _optional(warned, "pods' capacities (backends weigh the same)",
                         lambda: kube.list_metadata(resources.PODS,
                                                    label_selector=POD_SELECTOR))
    return services, slices, pods


def _optional(warned: dict[str, str], what: str,
              read: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    try:
        found = read()
    except Exception as error:  # noqa: BLE001 - the Service still routes
        if warned.get(what) != str(error):
            log.warning("could not list the %s: %s", what, error)
        warned[what] = str(error)
        return []
    if warned.pop(what, None) is not None:
        log.info("listing the %s again", what)
    return found


async def follow(gateway: Gateway, kube: Kube, *, static: Mapping[str, routes.ModelRoute],
                 waker: Waker | None, interval_s: float = 5.0) -> None:
    """Keep the gateway's table in step with the cluster; repeat wake requests while held."""
    current: dict[str, routes.ModelRoute] | None = None
    warned: dict[str, str] = {}
    while True:
        try:
            services, slices, pods = await asyncio.to_thread(read_cluster, kube, warned=warned)
            table = table_of(services, static, slices, pods)
            if table != current:
                gateway.set_routes(table)
                if current is None or set(table) != set(current):
                    log.info("serving %d model(s): %s", len(table), ", ".join(sorted(table)))
                current = table
        except Exception as error:  # noqa: BLE001 - keep serving the table we have
            log.warning("could not list the models behind the activator: %s", error)
        if waker is not None:
            for model in list(gateway.models.values()):
                if model.waiting and not model.ready_backends():
                    waker(model.name)
        await asyncio.sleep(interval_s)
