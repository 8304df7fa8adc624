"""Run the operator only while this process holds the leader Lease.

The controller-runtime convention: a replica waits as a candidate (answering its health
probe, watching nothing), runs every handler and the scaling loop once it holds the Lease,
and exits the moment it loses it, so a restarted pod comes back as a candidate. kopf's own
peering is not used: with only the leader running kopf, the standby has no watches to pause
and nothing of lmscale's is attached to a Kubernetes object (no finalizer, no CRD patch).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

from lmscale.k8s.client import Kube, make_api_client
from lmscale.k8s.lease import LeaderElector, LeaseTiming
from lmscale.settings import OperatorSettings

log = logging.getLogger(__name__)



class Stopper:
    """Stops kopf from any thread: a future on the loop kopf will run on.

    kopf waits for a thread-side flag (threading.Event, concurrent Future) in an executor
    thread, which outlives any other kind of stop (SIGTERM) and holds the loop's shutdown.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.future: asyncio.Future[None] = self.loop.create_future()

    def request(self) -> None:
        def resolve() -> None:
            if not self.future.done():
                self.future.set_result(None)

        with contextlib.suppress(RuntimeError):  # the loop is closed: stopped already
            self.loop.call_soon_threadsafe(resolve)


# What `start` gets: the stopper whose loop and future kopf runs with, and the elector
# (None when standalone) for the handlers' memo.
Start = Callable[[Stopper, LeaderElector | None], None]
EXIT_LEADERSHIP_LOST = 1


def identity() -> str:
    """The pod's name in a cluster (unique per replica), else host and process id."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


class _Standby(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = b'{"standby": "waiting for the leader lease"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@contextlib.contextmanager
def standby_health(liveness: str | None) -> Iterator[None]:
    """Answer the liveness URL while a candidate (kopf serves it only once it runs)."""
    if not liveness:
        yield
        return
    url = urllib.parse.urlsplit(liveness)
    server = ThreadingHTTPServer((url.hostname or "0.0.0.0", url.port or 80), _Standby)
    thread = threading.Thread(target=server.serve_forever, name="standby-health", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def _signals_set(flag: threading.Event) -> Iterator[None]:
    """SIGTERM/SIGINT while waiting to lead: stop waiting (kopf installs its own later)."""
    def handler(signum: int, frame: FrameType | None) -> None:
        flag.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run(settings: OperatorSettings, *, liveness: str | None, start: Start,
        kube: Kube | None = None, timing: LeaseTiming | None = None) -> int:
    """Wait for the Lease, run the operator while holding it; the process's exit code."""
    if settings.kopf.standalone:
        start(Stopper(), None)
        return 0
    waiting = threading.Event()
    elector = LeaderElector(kube or Kube(make_api_client()), name=settings.kopf.lease,
                            namespace=settings.kopf.lease_namespace, identity=identity(),
                            timing=timing or LeaseTiming())
    with _signals_set(waiting), standby_health(liveness):
        if not elector.acquire(waiting):
            return 0  # asked to stop while a candidate
    lost = threading.Event()
    stop = Stopper()

    def on_lost() -> None:
        lost.set()
        stop.request()  # kopf stops; the scaling loop already refuses to act

    renewing = threading.Event()
    holder = threading.Thread(target=elector.hold, args=(renewing, on_lost),
                              name="lease-renewal", daemon=True)
    holder.start()
    try:
        start(stop, elector)
    finally:
        renewing.set()
        if not lost.is_set():
            elector.release()
    if lost.is_set():
        log.error("exiting: leadership lost (lease %s/%s)", settings.kopf.lease_namespace,
                  settings.kopf.lease)
        return EXIT_LEADERSHIP_LOST
    return 0
