"""The live simulator on the real clock: ticks, Kubernetes polls and the HTTP API.

One lock guards the fleet. A tick thread advances it every `tick_seconds` (arrivals carry
their exact times, so a late tick delays nothing but the export); a poll thread lists the
cluster every `poll_seconds` outside the lock and then syncs the fleet; HTTP handlers
advance the fleet to the request's time before reading it, so a scrape is never a tick old.

HTTP:
- `GET /metrics`: every pod's series (text format 0.0.4, see `exporter`);
- `GET /state`: JSON per deployment (`fleet.Fleet.state`);
- `PUT /load/<namespace>/<name>`: `{"rps": R}` or `{"spec": "steps:..."}`, optional
  `promptTokens` / `outputTokens`: that deployment's load from now on;
- `DELETE /load/<namespace>/<name>`: back to the default load;
- `GET /healthz`.
"""

from __future__ import annotations

import http.server
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lmscale.sim import trace
from lmscale.sim.request import Request
from lmscale.sim.serve import exporter, load
from lmscale.sim.serve.fleet import DeploymentInfo, Fleet

logger = logging.getLogger(__name__)


class Traces:
    """Trace files read once each: a `trace:` spec given again costs nothing."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[Request, ...]] = {}

    def load(self, spec: load.LoadSpec, tokens: load.Tokens) -> load.Load:
        """A spec made runnable: a trace spec gets its requests (raises on a bad file)."""
        if not isinstance(spec, load.TraceReplay):
            return load.Load(spec, tokens)
        if spec.path not in self._cache:
            path = Path(spec.path)
            with path.open(encoding="utf-8") as lines:
                requests = trace.parse(lines, trace.guess_format(path.name), source=spec.path)
            self._cache[spec.path] = tuple(requests)
        return load.Load(spec, tokens, self._cache[spec.path])


class Simulator:
    """A fleet driven by the real clock and kept in step with the cluster."""

    def __init__(
        self,
        fleet: Fleet,
        *,
        source: Callable[[], Sequence[DeploymentInfo]],
        traces: Traces,
        tokens: load.Tokens,
        poll_seconds: float = 2.0,
        tick_seconds: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fleet = fleet
        self._source = source
        self._traces = traces
        self._tokens = tokens
        self._poll_seconds = poll_seconds
        self._tick_seconds = tick_seconds
        self._clock = clock
        self._epoch = clock()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def now(self) -> float:
        """Seconds since start: small numbers keep the engine's step sums precise."""
        return self._clock() - self._epoch

    # ----------------------------------------------------------------- loops

    def start(self) -> None:
        self.poll_once()
        for name, loop in (("tick", self._tick_loop), ("poll", self._poll_loop)):
            thread = threading.Thread(target=loop, name=f"sim-serve-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def poll_once(self) -> bool:
        """List the cluster and sync the fleet; False (and the fleet unchanged) on failure."""
        try:
            infos = self._source()
        except Exception as error:  # noqa: BLE001 - the next poll is the retry
            logger.warning("listing the cluster failed: %s", error)
            return False
        with self._lock:
            self.fleet.sync(infos, self.now())
        return True

    def _tick_loop(self) -> None:
        while not self._stop.wait(self._tick_seconds):
            try:
                with self._lock:
                    self.fleet.advance(self.now())
            except Exception:  # a bug must not freeze the export silently: log, keep ticking
                logger.exception("advancing the fleet failed")

    def _poll_loop(self) -> None:
        while not self._stop.wait(self._poll_seconds):
            self.poll_once()

    # ----------------------------------------------------------------- what HTTP asks

    def metrics(self) -> bytes:
        with self._lock:
            self.fleet.advance(self.now())
            pods = self.fleet.pods()
        return exporter.render(pods)

    def state(self) -> dict[str, Any]:
        with self._lock:
            self.fleet.advance(self.now())
            return {
                "time": self.fleet.now,
                "defaultLoad": str(self.fleet.default_load.spec),
                "deployments": self.fleet.state(),
            }

    def set_load(self, namespace: str, name: str, body: object) -> dict[str, Any]:
        """Apply a PUT body; raises `load.LoadSpecError` or `OSError` for a bad one."""
        spec, tokens = load.from_json(body, tokens=self._tokens)
        offered = self._traces.load(spec, tokens)
        with self._lock:
            self.fleet.set_load(namespace, name, offered, self.now())
        logger.info("load of %s/%s is now %s", namespace, name, spec)
        return _describe(namespace, name, offered)

    def reset_load(self, namespace: str, name: str) -> dict[str, Any]:
        with self._lock:
            self.fleet.set_load(namespace, name, None, self.now())
            offered = self.fleet.load_of(namespace, name)
        return _describe(namespace, name, offered)


def _describe(namespace: str, name: str, offered: load.Load) -> dict[str, Any]:
    return {
        "namespace": namespace,
        "name": name,
        "load": str(offered.spec),
        "promptTokens": offered.tokens.prompt,
        "outputTokens": offered.tokens.output,
    }


# --------------------------------------------------------------------- HTTP


def make_http_server(simulator: Simulator, host: str, port: int) -> http.server.HTTPServer:
    """A threaded HTTP server for `simulator`; port 0 picks a free one."""

    class Handler(_Handler):
        sim = simulator

    server = http.server.ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


class _Handler(http.server.BaseHTTPRequestHandler):
    sim: Simulator
    server_version = "lmscale-sim-serve"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            # Text 0.0.4 whatever the Accept header says (see `exporter`).
            self._send(200, self.sim.metrics(), exporter.CONTENT_TYPE)
        elif path == "/state":
            self._json(200, self.sim.state())
        elif path == "/healthz":
            self._send(200, b"ok\n", "text/plain")
        else:
            self._json(404, {"error": f"no such path {path}"})

    def do_PUT(self) -> None:  # noqa: N802
        target = self._load_target()
        if target is None:
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null")
            self._json(200, self.sim.set_load(*target, body))
        except (ValueError, OSError) as error:  # bad JSON, bad spec, unreadable trace
            self._json(400, {"error": str(error)})

    def do_DELETE(self) -> None:  # noqa: N802
        target = self._load_target()
        if target is not None:
            self._json(200, self.sim.reset_load(*target))

    def _load_target(self) -> tuple[str, str] | None:
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if len(parts) != 3 or parts[0] != "load" or not all(parts[1:]):
            self._json(404, {"error": "expected /load/<namespace>/<name>"})
            return None
        return parts[1], parts[2]

    def _json(self, status: int, payload: object) -> None:
        self._send(status, json.dumps(payload, indent=1).encode() + b"\n", "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        logger.debug("%s " + format, self.address_string(), *args)
