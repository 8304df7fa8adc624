"""The activator's HTTP servers (aiohttp): hold, forward and stream; /metrics on its own port.

Each model has backends (base URLs: its pods, from the cluster's EndpointSlices or --model
flags, or while none is known the model's pod Service) probed for readiness.
A request for a model with a ready backend goes to the one with fewest requests in flight, or,
when the route gives each backend a capacity, the fewest relative to its capacity; one
for a model with none waits in the model's hold queue until a probe passes, the hold timeout
or shutdown. Responses are copied chunk by chunk as they arrive, so SSE tokens are not held
back. Every request ends answered: forwarded, 503 with Retry-After, 502 or 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from lmscale.gateway import hold, routes
from lmscale.gateway.metrics import GatewayMetrics

log = logging.getLogger(__name__)
# RFC 9110 7.6.1: meaningful for one connection only, never forwarded.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                        "proxy-connection", "te", "trailer", "trailers", "transfer-encoding",
                        "upgrade"})
MAX_BODY_BYTES = 64 * 1024 * 1024  # long prompts and base64 images; aiohttp's default is 1 MiB


@dataclass(frozen=True)
class GatewayConfig:
    """What the activator serves and how long it holds."""

    routes: dict[str, routes.ModelRoute]
    hold: hold.HoldSettings = field(default_factory=hold.HoldSettings)
    probe_path: str = "/health"
    probe_interval_s: float = 1.0
    probe_timeout_s: float = 2.0
    connect_timeout_s: float = 5.0


@dataclass
class Backend:
    url: str
    ready: bool = False
    in_flight: int = 0
    capacity: float = 1.0  # what it carries at the SLO; the pick's weight when the route has them


class Model:
    """One model's backends, its ready switch, its hold settings and queue length."""

    def __init__(self, route: routes.ModelRoute, metrics: GatewayMetrics,
                 defaults: hold.HoldSettings) -> None:
        self.name = route.name
        self.route = route
        self.hold = _hold_settings(route, defaults)
        self.backends = [Backend(url) for url in route.backends]
        self.weighted = False
        self.set_capacities(route)
        self.ready = asyncio.Event()  # set while a backend is ready (or at shutdown)
        self.waiting = 0
        self.removed = False  # no longer in the table: held requests are answered
        self.probes: dict[str, asyncio.Task[None]] = {}  # by backend URL
        self._metrics = metrics
        metrics.declare(route.name)

    def set_backends(self, route: routes.ModelRoute) -> tuple[list[Backend], list[Backend]]:
        """Take the route's backend URLs: one kept keeps its readiness and requests in flight.

        Returns the backends added (to probe) and removed (whose probes stop); the ready
        switch follows the backends that remain.
        """
        old = {b.url: b for b in self.backends}
        self.backends = [old.get(url) or Backend(url) for url in route.backends]
        kept = {b.url for b in self.backends}
        added = [b for b in self.backends if b.url not in old]
        removed = [b for url, b in old.items() if url not in kept]
        self.route = route
        self.set_capacities(route)
        if removed:
            self._ready_changed()
        return added, removed

    def set_capacities(self, route: routes.ModelRoute) -> None:
        """Take the route's capacities (a change needs no new probes: the URLs are the same)."""
        self.weighted = bool(route.capacities)
        for backend, capacity in zip(self.backends, route.capacities or
                                     (1.0,) * len(self.backends), strict=True):
            backend.capacity = capacity

    def pick(self, ready: list[Backend]) -> Backend:
        """The ready backend a request goes to (`hold.pick`, weighted when the route is)."""
        capacities = [b.capacity for b in ready] if self.weighted else None
        index = hold.pick([b.in_flight for b in ready], capacities)
        assert index is not None
        return ready[index]

    def ready_backends(self) -> list[Backend]:
        return [b for b in self.backends if b.ready]

    def mark(self, backend: Backend, ready: bool) -> None:
        backend.ready = ready
        self._ready_changed()

    def _ready_changed(self) -> None:
        count = len(self.ready_backends())
        self._metrics.ready_backends.labels(self.name).set(count)
        if count:
            self.ready.set()
        else:
            self.ready.clear()


def _hold_settings(route: routes.ModelRoute, defaults: hold.HoldSettings) -> hold.HoldSettings:
    """The activator's queue size, and the model's own hold timeout where it names one."""
    if route.hold_timeout_s is None:
        return defaults
    return hold.HoldSettings(capacity=defaults.capacity, timeout_s=route.hold_timeout_s)


class Gateway:
    """The proxy application; `clock` is injectable so waits are measured one way."""

    def __init__(self, config: GatewayConfig, *, metrics: GatewayMetrics | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 on_hold: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.on_hold = on_hold  # told the model's name when a request starts waiting
        self.metrics = metrics or GatewayMetrics()
        self.clock = clock
        self.closing = False
        self.models: dict[str, Model] = {}
        self._stopped: list[asyncio.Task[None]] = []  # probes of models left behind
        self.routes: dict[str, routes.ModelRoute] = dict(config.routes)
        self._session: aiohttp.ClientSession | None = None
        self._probe_session: aiohttp.ClientSession | None = None

    # ----------------------------------------------------------------- applications

    def proxy_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_startup.append(self._start)
        app.on_shutdown.append(self._shutdown)
        app.on_cleanup.append(self._cleanup)
        return app

    def admin_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics_page)
        app.router.add_get("/healthz", self._healthz)
        return app

    async def _start(self, app: web.Application) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.config.connect_timeout_s),
            auto_decompress=False)  # bytes pass through as the backend encoded them
        # A probe opens a new connection each time: a kept-alive one stays with wherever the
        # Service's rules sent it first (a pod gone, or, while the Service had no endpoint,
        # whatever answered its address), and would never see the pod that is Ready now.
        self._probe_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True, limit=0))
        for route in self.routes.values():
            self._add(route)

    def _add(self, route: routes.ModelRoute) -> None:
        model = self.models[route.name] = Model(route, self.metrics, self.config.hold)
        model.probes = {b.url: asyncio.create_task(self._probe(model, b))
                        for b in model.backends}

    def _drop(self, model: Model) -> None:
        """Out of the table: its probes stop, and its held requests are answered 503."""
        for probe in model.probes.values():
            probe.cancel()
        self._stopped.extend(model.probes.values())
        model.removed = True
        model.ready.set()

    def _rebackend(self, model: Model, route: routes.ModelRoute) -> None:
        """New backend URLs for a model (pods come and go): the kept ones keep their probes
        and readiness, new ones are probed, gone ones stop; held requests stay held."""
        added, removed = model.set_backends(route)
        self._stopped = [t for t in self._stopped if not t.done()]  # a fleet's churn: bounded
        for backend in removed:
            probe = model.probes.pop(backend.url)
            probe.cancel()
            self._stopped.append(probe)
        for backend in added:
            model.probes[backend.url] = asyncio.create_task(self._probe(model, backend))

    def set_routes(self, table: dict[str, routes.ModelRoute]) -> None:
        """Serve `table` from now on (models learned from the cluster come and go).

        A model whose route is unchanged keeps its probes, readiness and held requests; one
        whose backends changed keeps those it still has (their probes and readiness) and
        its held requests, and probes the new ones; a changed hold timeout applies to new
        requests; a model gone from the table answers its held requests 503 Retry-After.
        """
        if self.closing:
            return
        if self._session is None:  # not started: _start adds what the table holds
            self.routes = dict(table)
            return
        for name in [n for n in self.models if n not in table]:
            self._drop(self.models.pop(name))
        for name, route in table.items():
            model = self.models.get(name)
            if model is None:
                self._add(route)
            else:
                if route.backends != model.route.backends:
                    self._rebackend(model, route)  # its capacities with its backends
                else:
                    model.set_capacities(route)
                model.route, model.hold = route, _hold_settings(route, self.config.hold)
        self.routes = dict(table)

    async def _shutdown(self, app: web.Application) -> None:
        """Held requests are answered 503 (Retry-After 1): another replica takes them."""
        self.closing = True
        for model in self.models.values():
            for probe in model.probes.values():
                probe.cancel()
            model.ready.set()  # wakes every waiter; each sees `closing`

    async def _cleanup(self, app: web.Application) -> None:
        probes = [p for m in self.models.values() for p in m.probes.values()] + self._stopped
        for probe in probes:
            probe.cancel()
        await asyncio.gather(*probes, return_exceptions=True)
        for session in (self._session, self._probe_session):
            if session is not None:
                await session.close()

    async def _metrics_page(self, request: web.Request) -> web.Response:
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(status=503 if self.closing else 200, text="ok\n")

    # ----------------------------------------------------------------- readiness

    async def _probe(self, model: Model, backend: Backend) -> None:
        assert self._probe_session is not None
        timeout = aiohttp.ClientTimeout(total=self.config.probe_timeout_s)
        while True:
            try:
                async with self._probe_session.get(backend.url + self.config.probe_path,
                                             timeout=timeout) as response:
                    ok = response.status == 200
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            except Exception:  # noqa: BLE001 - a probe that dies would hold the model forever
                log.exception("probe of %s failed", backend.url)
                ok = False
            if ok != backend.ready:
                model.mark(backend, ok)
            await asyncio.sleep(self.config.probe_interval_s)

    # ----------------------------------------------------------------- requests

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        name = routes.resolve(self.routes, host=request.host,
                              model=routes.body_model(body))
        if name is None:
            if request.method == "GET" and request.path == "/v1/models":
                return web.json_response(self._model_list())
            return _error(404, f"no model for host {request.host!r} and this request's model "
                               f"field; models: {', '.join(sorted(self.models))}",
                          "model_not_found")
        model = self.models[name]
        arrived = self.clock()
        self.metrics.arrivals.labels(name).inc()
        held = False
        while True:
            got = await self._await_backend(model, arrived, held=held)
            if isinstance(got, hold.Rejection):
                return self._reject(model, got, arrived)
            held = True
            response = await self._forward(request, model, got, body, arrived)
            if response is not None:
                return response
            # the backend failed before answering: nothing was sent, so wait for another
            if not model.ready_backends() and hold.remaining(
                    arrived_s=arrived, now_s=self.clock(), settings=model.hold) <= 0:
                return _error(502, f"model {name}: the backend failed before answering",
                              "bad_gateway")

    async def _await_backend(self, model: Model, arrived: float, *,
                             held: bool) -> Backend | hold.Rejection:
        """A ready backend, or why the request is refused; waits in the hold queue meanwhile."""
        while True:
            settings = model.hold
            ready = model.ready_backends()
            outcome = hold.admit(ready_backends=len(ready), waiting=model.waiting,
                                 settings=settings)
            if outcome is hold.Outcome.FORWARD and not (self.closing or model.removed):
                return model.pick(ready)
            if self.closing or model.removed:
                return hold.Rejection.SHUTDOWN
            if outcome is hold.Outcome.REJECT_FULL and not held:
                return hold.Rejection.QUEUE_FULL
            left = hold.remaining(arrived_s=arrived, now_s=self.clock(), settings=settings)
            if left <= 0:
                return hold.Rejection.TIMEOUT
            held = True
            if self.on_hold is not None and not ready:
                self.on_hold(model.name)  # e.g. ask the operator to wake the model
            model.waiting += 1
            self.metrics.waiting.labels(model.name).inc()
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(model.ready.wait(), left)
            except asyncio.CancelledError:
                self.metrics.abandoned.labels(model.name).inc()  # the client hung up
                raise
            finally:
                model.waiting -= 1
                self.metrics.waiting.labels(model.name).dec()

    def _reject(self, model: Model, reason: hold.Rejection, arrived: float) -> web.Response:
        self.metrics.rejected.labels(model.name, reason.value).inc()
        if reason is hold.Rejection.TIMEOUT:
            self.metrics.timed_out.labels(model.name).inc()
        self.metrics.wait_seconds.labels(model.name).observe(self.clock() - arrived)
        after = hold.retry_after(reason, model.hold)
        messages = {
            hold.Rejection.QUEUE_FULL: f"model {model.name} is starting and its hold queue is "
                                       f"full ({model.hold.capacity} requests)",
            hold.Rejection.TIMEOUT: f"model {model.name} had no ready replica within "
                                    f"{model.hold.timeout_s:g} s",
            hold.Rejection.SHUTDOWN: ("the activator is shutting down" if self.closing else
                                      f"model {model.name} is no longer held by the activator"),
        }
        response = _error(503, messages[reason] + f"; retry in {after} s", reason.value)
        response.headers["Retry-After"] = str(after)
        return response

    async def _forward(self, request: web.Request, model: Model, backend: Backend, body: bytes,
                       arrived: float) -> web.StreamResponse | None:
        """Send the request to `backend` and stream its answer; None if it could not connect."""
        assert self._session is not None
        headers = [(k, v) for k, v in request.headers.items()
                   if k.lower() not in HOP_BY_HOP and k.lower() not in ("host", "content-length")]
        headers.append(("X-Forwarded-Host", request.host))
        if request.remote:
            headers.append(("X-Forwarded-For", request.remote))
        backend.in_flight += 1
        try:
            try:
                upstream = await self._session.request(
                    request.method, backend.url + request.rel_url.raw_path_qs, data=body,
                    headers=headers, allow_redirects=False)
            except (aiohttp.ClientConnectionError, TimeoutError):
                self.metrics.upstream_errors.labels(model.name).inc()
                model.mark(backend, False)  # the probe marks it ready again when it is
                return None
            self.metrics.forwarded.labels(model.name).inc()
            self.metrics.wait_seconds.labels(model.name).observe(self.clock() - arrived)
            try:
                return await _relay(request, upstream)
            finally:
                upstream.close()
        finally:
            backend.in_flight -= 1

    def _model_list(self) -> dict[str, object]:
        return {"object": "list",
                "data": [{"id": name, "object": "model", "owned_by": "lmscale"}
                         for name in sorted(self.models)]}


async def _relay(request: web.Request, upstream: aiohttp.ClientResponse) -> web.StreamResponse:
    """Copy status, headers and body chunks as they come (no buffering of the whole answer)."""
    response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
    for key, value in upstream.headers.items():
        if key.lower() not in HOP_BY_HOP:
            response.headers.add(key, value)
    await response.prepare(request)
    async for chunk in upstream.content.iter_any():
        await response.write(chunk)
    await response.write_eof()
    return response


def _error(status: int, message: str, code: str) -> web.Response:
    """An OpenAI-style error body."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    return web.json_response({"error": {"message": message, "type": kind, "param": None,
                                        "code": code}}, status=status)


async def serve(gateway: Gateway, *, host: str, port: int, admin_host: str,
                admin_port: int, stop: asyncio.Event, grace_s: float = 30.0) -> None:
    """Run both servers until `stop` is set, then drain for up to `grace_s` seconds."""
    # handler_cancellation: a client that hangs up cancels its handler, so a held request
    # leaves the queue at once and a stream stops reading from its backend.
    proxy = web.AppRunner(gateway.proxy_app(), access_log=None, shutdown_timeout=grace_s,
                          handler_cancellation=True)
    admin = web.AppRunner(gateway.admin_app(), access_log=None)
    await proxy.setup()
    await admin.setup()
    try:
        await web.TCPSite(proxy, host, port, backlog=4096).start()
        await web.TCPSite(admin, admin_host, admin_port).start()
        await stop.wait()
    finally:
        await admin.cleanup()
        await proxy.cleanup()
