"""The activator as a real process on loopback, in front of real stand-in processes.

What the request path relies on: streams pass through token by token, a request for a model
with no ready backend is held and answered once one is ready, a burst beyond the hold queue
gets 503 with Retry-After at once and the held rest are answered, a hold that outlasts the
timeout gets 503, SIGTERM answers held requests instead of dropping them, and /metrics counts
all of it per model.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

MODEL = "m"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    def __init__(self, argv: list[str], **env: str) -> None:
        self.process = subprocess.Popen(argv, env={**os.environ, **env},
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _wait_for(port: int, path: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if _get(port, path)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"127.0.0.1:{port}{path} never answered 200")


class Env:
    """Starts stand-ins and activators; stops whatever is left at the end."""

    def __init__(self) -> None:
        self.started: list[Process] = []

    def standin(self, port: int, **env: str) -> Process:
        argv = [sys.executable, "-m", "lmscale.sim.standin", "vllm", "serve", MODEL,
                "--host", "127.0.0.1", "--port", str(port)]
        process = Process(argv, **env)
        self.started.append(process)
        return process

    def gateway(self, backend_ports: list[int], *args: str) -> tuple[Process, int, int]:
        port, admin = _free_port(), _free_port()
        backends = ",".join(f"http://127.0.0.1:{p}" for p in backend_ports)
        argv = [sys.executable, "-m", "lmscale", "gateway", "--model", f"{MODEL}={backends}",
                "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin}",
                "--probe-interval", "0.1", *args]
        process = Process(argv)
        self.started.append(process)
        _wait_for(admin, "/healthz")
        return process, port, admin


@pytest.fixture
def env() -> Iterator[Env]:
    e = Env()
    yield e
    for p in e.started:
        p.stop(signal.SIGKILL)


def _post(port: int, body: dict[str, Any], timeout: float = 60) -> tuple[int, dict[str, str],
                                                                        bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/v1/completions", json.dumps(body),
                     {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def _completion(port: int, **extra: Any) -> tuple[int, dict[str, str], bytes]:
    return _post(port, {"model": MODEL, "prompt": "hello", "max_tokens": 4, **extra})


def _metrics(admin: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = _get(admin, "/metrics")
    assert status == 200
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(metrics: dict, name: str, **labels: str) -> float:
    return metrics[(name, tuple(sorted({"model": MODEL, **labels}.items())))]


def test_streams_pass_through_token_by_token(env: Env) -> None:
    backend = _free_port()
    env.standin(backend, LMSCALE_STANDIN_SPEED="0.02")  # slow steps: tokens ~0.1 s apart
    _wait_for(backend, "/health")
    _, port, admin = env.gateway([backend])
    _wait_for(port, "/health")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", "/v1/completions", json.dumps(
        {"model": MODEL, "prompt": "hi", "max_tokens": 6, "stream": True}),
        {"Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/event-stream"
    arrivals, data = [], []
    while line := response.readline():
        if line.startswith(b"data: "):
            arrivals.append(time.monotonic())
            data.append(line[6:].strip())
    conn.close()
    assert data[-1] == b"[DONE]"
    assert len(data) == 7
    # a buffering proxy delivers every event at once; here they come spread over the stream
    assert arrivals[-2] - arrivals[0] > 0.2, arrivals
    assert _value(_metrics(admin), "lmscale_gateway_forwarded_total") >= 1


def test_a_request_is_held_until_the_backend_is_ready(env: Env) -> None:
    backend = _free_port()
    _, port, admin = env.gateway([backend], "--hold-timeout", "30")
    with ThreadPoolExecutor(4) as pool:
        pending = [pool.submit(_completion, port) for _ in range(3)]
        deadline = time.monotonic() + 10
        while _value(_metrics(admin), "lmscale_gateway_requests_waiting") < 3:
            assert time.monotonic() < deadline, "the requests were never held"
            time.sleep(0.05)
        assert not any(p.done() for p in pending)
        env.standin(backend)  # the model's first replica comes up only now
        results = [p.result(timeout=30) for p in pending]
    assert [status for status, _, _ in results] == [200, 200, 200]
    assert all(json.loads(body)["choices"][0]["text"] for _, _, body in results)
    metrics = _metrics(admin)
    assert _value(metrics, "lmscale_gateway_requests_waiting") == 0
    assert _value(metrics, "lmscale_gateway_arrivals_total") == 3
    assert _value(metrics, "lmscale_gateway_forwarded_total") == 3
    assert _value(metrics, "lmscale_gateway_wait_seconds_count") == 3
    assert _value(metrics, "lmscale_gateway_wait_seconds_bucket", le="0.1") == 0


def test_a_burst_beyond_the_queue_gets_503_and_the_held_rest_are_answered(env: Env) -> None:
    backend = _free_port()
    # a cold start: the engine listens but answers 503 for its first 2 seconds
    env.standin(backend, LMSCALE_STANDIN_STARTUP_SECONDS="2")
    _, port, admin = env.gateway([backend], "--queue-size", "4", "--hold-timeout", "60")
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda _: _completion(port), range(10)))
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200] * 4 + [503] * 6
    for status, headers, body in results:
        if status == 503:
            assert headers["Retry-After"] == "6"
            assert json.loads(body)["error"]["code"] == "queue_full"
    metrics = _metrics(admin)
    assert _value(metrics, "lmscale_gateway_arrivals_total") == 10
    assert _value(metrics, "lmscale_gateway_forwarded_total") == 4
    assert _value(metrics, "lmscale_gateway_rejected_total", reason="queue_full") == 6
    assert _value(metrics, "lmscale_gateway_timed_out_total") == 0


def test_a_hold_past_the_timeout_gets_503_with_retry_after(env: Env) -> None:
    backend = _free_port()  # nothing ever listens there
    _, port, admin = env.gateway([backend], "--hold-timeout", "1")
    started = time.monotonic()
    status, headers, body = _completion(port)
    waited = time.monotonic() - started
    assert status == 503
    assert headers["Retry-After"] == "1"
    assert json.loads(body)["error"]["code"] == "timeout"
    assert waited >= 1.0
    metrics = _metrics(admin)
    assert _value(metrics, "lmscale_gateway_timed_out_total") == 1
    assert _value(metrics, "lmscale_gateway_rejected_total", reason="timeout") == 1
    assert _value(metrics, "lmscale_gateway_wait_seconds_bucket", le="0.5") == 0
    assert _value(metrics, "lmscale_gateway_wait_seconds_bucket", le="2.5") == 1


def test_sigterm_answers_held_requests_instead_of_dropping_them(env: Env) -> None:
    backend = _free_port()
    gateway, port, admin = env.gateway([backend], "--hold-timeout", "60")
    with ThreadPoolExecutor(3) as pool:
        pending = [pool.submit(_completion, port) for _ in range(3)]
        deadline = time.monotonic() + 10
        while _value(_metrics(admin), "lmscale_gateway_requests_waiting") < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert gateway.stop() == 0
        results = [p.result(timeout=30) for p in pending]
    for status, headers, body in results:
        assert status == 503
        assert headers["Retry-After"] == "1"
        assert json.loads(body)["error"]["code"] == "shutdown"


def test_a_request_for_an_unknown_model_is_404(env: Env) -> None:
    backend = _free_port()
    _, port, _ = env.gateway([backend])
    status, _, body = _post(port, {"model": "other", "prompt": "x"})
    assert status == 404
    assert json.loads(body)["error"]["code"] == "model_not_found"


def test_a_held_request_whose_client_hangs_up_leaves_the_queue(env: Env) -> None:
    backend = _free_port()
    _, port, admin = env.gateway([backend], "--hold-timeout", "60")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/v1/completions", json.dumps({"model": MODEL, "prompt": "x"}),
                 {"Content-Type": "application/json"})
    deadline = time.monotonic() + 10
    while _value(_metrics(admin), "lmscale_gateway_requests_waiting") < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    conn.close()  # the client gives up while its request is held
    deadline = time.monotonic() + 10
    while _value(_metrics(admin), "lmscale_gateway_requests_waiting") > 0:
        assert time.monotonic() < deadline, "the abandoned request still holds a queue slot"
        time.sleep(0.05)
    env.standin(backend)
    _wait_for(backend, "/health")
    time.sleep(0.5)  # a probe or two: had it stayed queued it would be forwarded now
    metrics = _metrics(admin)
    assert _value(metrics, "lmscale_gateway_abandoned_total") == 1
    assert _value(metrics, "lmscale_gateway_forwarded_total") == 0
