"""The activator weighs its choice of backend by each backend's capacity (a mixed fleet)."""

from __future__ import annotations

import asyncio
from collections import Counter

from aiohttp import test_utils, web

from lmscale.gateway import proxy
from lmscale.gateway.routes import ModelRoute


async def _backend(name: str, arrived: Counter[str], release: asyncio.Event
                   ) -> test_utils.TestServer:
    """A backend that is Ready and holds every request until `release` is set."""
    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def complete(request: web.Request) -> web.Response:
        arrived[name] += 1
        await release.wait()
        return web.json_response({"backend": name})

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_post("/v1/completions", complete)
    server = test_utils.TestServer(app)
    await server.start_server()
    return server


def _spread(capacities: tuple[float, ...], *, requests: int) -> Counter[str]:
    """How `requests` held at once spread over two backends with these capacities."""
    arrived: Counter[str] = Counter()

    async def main() -> None:
        release = asyncio.Event()
        fast = await _backend("fast", arrived, release)
        slow = await _backend("slow", arrived, release)
        try:
            route = ModelRoute(name="ml/m", served=frozenset({"m"}), capacities=capacities,
                               backends=tuple(str(s.make_url("")).rstrip("/")
                                              for s in (fast, slow)))
            gateway = proxy.Gateway(proxy.GatewayConfig(routes={route.name: route},
                                                        probe_interval_s=0.05))
            async with test_utils.TestClient(test_utils.TestServer(gateway.proxy_app())
                                             ) as client:
                for _ in range(200):
                    if len(gateway.models["ml/m"].ready_backends()) == 2:
                        break
                    await asyncio.sleep(0.02)
                sent = []
                for _ in range(requests):  # one at a time, so each pick sees the last
                    sent.append(asyncio.ensure_future(
                        client.post("/v1/completions", json={"model": "m"})))
                    for _ in range(200):
                        if sum(arrived.values()) == len(sent):
                            break
                        await asyncio.sleep(0.01)
                release.set()
                answers = await asyncio.gather(*sent)
                assert [a.status for a in answers] == [200] * requests
        finally:
            await fast.close()
            await slow.close()

    asyncio.run(main())
    return arrived


def test_requests_in_flight_follow_the_backends_capacities() -> None:
    assert _spread((30.0, 10.0), requests=8) == Counter({"fast": 6, "slow": 2})


def test_without_capacities_each_backend_gets_the_same_share() -> None:
    assert _spread((), requests=8) == Counter({"fast": 4, "slow": 4})


def test_new_capacities_keep_the_backends_and_their_readiness() -> None:
    first = ModelRoute(name="ml/m", backends=("http://a", "http://b"))
    weighted = ModelRoute(name="ml/m", backends=("http://a", "http://b"),
                          capacities=(30.0, 10.0))

    async def main() -> None:
        gateway = proxy.Gateway(proxy.GatewayConfig(routes={first.name: first},
                                                    probe_interval_s=60.0))
        async with test_utils.TestClient(test_utils.TestServer(gateway.proxy_app())):
            model = gateway.models["ml/m"]
            for backend in model.backends:
                model.mark(backend, True)
            model.backends[0].in_flight = 1
            assert model.pick(model.ready_backends()).url == "http://b"
            gateway.set_routes({weighted.name: weighted})
            assert gateway.models["ml/m"] is model
            assert [b.capacity for b in model.backends] == [30.0, 10.0]
            assert len(model.ready_backends()) == 2
            assert model.pick(model.ready_backends()).url == "http://a"  # 2/30 < 1/10

    asyncio.run(main())
