"""The activator's table changing under it: per-model hold timeouts, models coming and going."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

from aiohttp import test_utils

from lmscale.gateway import hold, proxy
from lmscale.gateway.routes import ModelRoute


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once closed


def _run(body: Callable[[test_utils.TestClient, proxy.Gateway], Awaitable[None]],
         routes: dict[str, ModelRoute], *, timeout_s: float = 30.0) -> None:
    config = proxy.GatewayConfig(routes=routes, hold=hold.HoldSettings(timeout_s=timeout_s),
                                 probe_interval_s=0.05)

    async def main() -> None:
        gateway = proxy.Gateway(config)
        async with test_utils.TestClient(test_utils.TestServer(gateway.proxy_app())) as client:
            await body(client, gateway)

    asyncio.run(main())


def test_a_models_own_hold_timeout_wins_over_the_activators() -> None:
    short = ModelRoute(name="ml/short", backends=(_closed_port(),), served=frozenset({"s"}),
                       hold_timeout_s=0.3)

    async def body(client: test_utils.TestClient, gateway: proxy.Gateway) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        response = await client.post("/v1/completions", json={"model": "s"})
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        assert 0.3 <= loop.time() - started < 5  # not the activator's 30 s
        assert (await response.json())["error"]["code"] == "timeout"

    _run(body, {short.name: short})


def test_a_model_added_later_is_served_and_one_removed_answers_its_held_requests() -> None:
    first = ModelRoute(name="ml/a", backends=(_closed_port(),), served=frozenset({"a"}))
    later = ModelRoute(name="ml/b", backends=(_closed_port(),), served=frozenset({"b"}),
                       hosts=frozenset({"b.ml.svc"}), hold_timeout_s=0.2)

    async def body(client: test_utils.TestClient, gateway: proxy.Gateway) -> None:
        missing = await client.post("/v1/completions", json={"model": "b"})
        assert missing.status == 404
        gateway.set_routes({first.name: first, later.name: later})
        by_host = await client.get("/v1/models", headers={"Host": "b.ml.svc"})
        assert by_host.status == 503 and by_host.headers["Retry-After"] == "1"
        held = asyncio.ensure_future(client.post("/v1/completions", json={"model": "a"}))
        for _ in range(100):
            if gateway.models["ml/a"].waiting:
                break
            await asyncio.sleep(0.02)
        assert gateway.models["ml/a"].waiting == 1
        gateway.set_routes({later.name: later})
        response = await asyncio.wait_for(held, 5)
        assert response.status == 503 and response.headers["Retry-After"] == "1"
        assert "no longer held" in (await response.json())["error"]["message"]
        assert "ml/a" not in gateway.models

    _run(body, {first.name: first})


def test_a_probe_sees_the_backend_of_now_not_of_its_first_connection() -> None:
    """A Service address with no endpoint may be answered by something else (a proxy on the
    default route) over a kept-alive connection; the pod Ready later is behind new ones."""
    from aiohttp import web

    ready_after = {"switched": False}
    old_connections: set[int] = set()

    async def health(request: web.Request) -> web.Response:
        peer = id(request.transport)
        if not ready_after["switched"]:
            old_connections.add(peer)
            return web.Response(status=404)  # keep-alive: aiohttp's default
        return web.Response(status=404 if peer in old_connections else 200)

    async def body(client: test_utils.TestClient, gateway: proxy.Gateway) -> None:
        await asyncio.sleep(0.3)  # a few probes on the "nothing there yet" answers
        assert not gateway.models["ml/m"].ready_backends()
        ready_after["switched"] = True
        for _ in range(100):
            if gateway.models["ml/m"].ready_backends():
                break
            await asyncio.sleep(0.02)
        assert gateway.models["ml/m"].ready_backends()

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/health", health)
        async with test_utils.TestServer(app) as backend:
            route = ModelRoute(name="ml/m", backends=(str(backend.make_url("")).rstrip("/"),))
            config = proxy.GatewayConfig(routes={route.name: route}, probe_interval_s=0.05)
            gateway = proxy.Gateway(config)
            server = test_utils.TestServer(gateway.proxy_app())
            async with test_utils.TestClient(server) as client:
                await body(client, gateway)

    asyncio.run(main())


def test_new_backends_keep_the_held_requests_and_the_backends_still_there() -> None:
    """At zero the model's backend is its Service; its first pod Ready replaces it (and
    later pods join): the held request goes to the pod, it is not answered 503."""
    from aiohttp import web

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def complete(request: web.Request) -> web.Response:
        return web.json_response({"from": "pod"})

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/health", health)
        app.router.add_post("/v1/completions", complete)
        async with test_utils.TestServer(app) as pod:
            pod_url = str(pod.make_url("")).rstrip("/")
            service = ModelRoute(name="ml/m", backends=(_closed_port(),), served=frozenset({"m"}))
            gateway = proxy.Gateway(proxy.GatewayConfig(
                routes={service.name: service}, probe_interval_s=0.05))
            async with test_utils.TestClient(test_utils.TestServer(gateway.proxy_app())
                                             ) as client:
                model = gateway.models["ml/m"]
                held = asyncio.ensure_future(client.post("/v1/completions",
                                                         json={"model": "m"}))
                for _ in range(100):
                    if model.waiting:
                        break
                    await asyncio.sleep(0.02)
                assert model.waiting == 1
                gateway.set_routes({"ml/m": ModelRoute(
                    name="ml/m", backends=(pod_url,), served=frozenset({"m"}))})
                response = await asyncio.wait_for(held, 5)
                assert response.status == 200 and await response.json() == {"from": "pod"}
                assert gateway.models["ml/m"] is model
                kept = model.backends[0]
                assert kept.ready
                # a second pod joins: the first keeps its readiness and its probe
                gateway.set_routes({"ml/m": ModelRoute(
                    name="ml/m", backends=(pod_url, _closed_port()), served=frozenset({"m"}),
                    capacities=(30.0, 10.0))})
                assert model.backends[0] is kept and kept.ready and kept.capacity == 30.0
                assert len(model.probes) == 2
                # and leaves again: its probe stops
                gateway.set_routes({"ml/m": ModelRoute(name="ml/m", backends=(pod_url,),
                                                       served=frozenset({"m"}))})
                assert [b.url for b in model.backends] == [pod_url]
                assert list(model.probes) == [pod_url]

    asyncio.run(main())
