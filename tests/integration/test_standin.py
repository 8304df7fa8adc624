"""The engine stand-in as a real process on loopback, started through the image's shims.

What a pod on the real node relies on: the rendered command line of every example starts it,
an unknown flag ends it as the engine would, streams come token by token at the step model's
pace, /metrics carries the series the operator queries, and SIGTERM drains.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from lmscale import api
from lmscale.api import EngineKind, semantic
from lmscale.metrics import promql, registry
from lmscale.metrics.results import Metric
from lmscale.planner import catalog
from lmscale.planner.performance import replica_performance
from lmscale.planner.plan import plan_replica
from lmscale.render import render_deployment

REPO = Path(__file__).resolve().parents[2]
SHIMS = REPO / "operator" / "standin"
EXAMPLES = sorted((REPO / "examples").glob("*/lmd.yaml"))
COMMANDS = {  # how the image resolves each rendered command, here without installing anything
    "vllm": [sys.executable, str(SHIMS / "bin" / "vllm")],
    "text-generation-launcher": [sys.executable, str(SHIMS / "bin" / "text-generation-launcher")],
    "python3": [sys.executable],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(SHIMS), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


def _command(command: list[str], args: list[str]) -> list[str]:
    return [*COMMANDS[command[0]], *command[1:], *args]


class Standin:
    """One running stand-in and a client for it."""

    def __init__(self, argv: list[str], port: int, **env: str) -> None:
        self.port = port
        self.process = subprocess.Popen(
            argv, env=_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def wait_ready(self, path: str = "/health", timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                stderr = self.process.stderr.read() if self.process.stderr else ""
                raise AssertionError(f"exited {self.process.returncode}: {stderr}")
            try:
                if self.get(path)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{path} never answered 200")

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def get(self, path: str) -> tuple[int, bytes]:
        conn = self.connection()
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def post(self, path: str, body: dict[str, Any]) -> http.client.HTTPResponse:
        conn = self.connection()
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        return conn.getresponse()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()


@pytest.fixture
def standins() -> Iterator[list[Standin]]:
    started: list[Standin] = []
    yield started
    for s in started:
        if s.process.poll() is None:
            s.process.kill()
            s.process.wait()


def _start(standins: list[Standin], argv: list[str], port: int, **env: str) -> Standin:
    standin = Standin(argv, port, **env)
    standins.append(standin)
    return standin


def _events(response: http.client.HTTPResponse) -> Iterator[tuple[float, str]]:
    """(arrival time, data) per SSE event, read as the bytes arrive."""
    buffer = b""
    while True:
        line = response.readline()
        if not line:
            return
        buffer += line
        if buffer.endswith(b"\n\n"):
            text = buffer.decode().strip()
            buffer = b""
            if text.startswith("data: "):
                yield time.monotonic(), text[len("data: ") :]


# ----------------------------------------------------------------------------- command lines

UNKNOWN = [
    pytest.param(["vllm", "serve", "m"], ["--bogus-flag", "1"],
                 "vllm serve: error: unrecognized arguments: --bogus-flag 1", id="vllm"),
    pytest.param(["text-generation-launcher"], ["--served-model-name", "x"],
                 "error: unexpected argument '--served-model-name' found", id="tgi"),
    pytest.param(["python3", "-m", "sglang.launch_server", "--model-path", "m"], ["--bogus"],
                 "launch_server.py: error: unrecognized arguments: --bogus", id="sglang"),
]  # fmt: skip


@pytest.mark.parametrize(("command", "args", "message"), UNKNOWN)
def test_unknown_flag_exits_2_as_the_engine_does(
    command: list[str], args: list[str], message: str
) -> None:
    done = subprocess.run(_command(command, args), env=_env(), capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert message in done.stderr


def _examples() -> list[Any]:
    return [pytest.param(p, id=p.parent.name) for p in EXAMPLES]


def _with_port(kind: EngineKind, args: list[str], port: int) -> list[str]:
    """The rendered args on a free loopback port (and TGI's metrics listener on another)."""
    out = list(args)
    out[out.index("--port") + 1] = str(port)
    if kind is EngineKind.TGI:
        out += ["--prometheus-port", str(_free_port())]
    return out


@pytest.mark.parametrize("path", _examples())
def test_rendered_command_line_of_every_example_serves(
    path: Path, standins: list[Standin]
) -> None:
    body = yaml.safe_load(path.read_text())
    body["metadata"].update(namespace="ns", uid="u")
    lmd = api.LanguageModelDeployment.model_validate(body)
    resolution = semantic.resolve(lmd.spec)
    assert resolution.plan is not None, resolution.message
    pod = render_deployment(lmd, resolution.plan)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    kind = lmd.spec.engine.kind
    port = _free_port()
    argv = _command(container["command"], _with_port(kind, container["args"], port))
    standin = _start(standins, argv, port, LMSCALE_STANDIN_GPU=lmd.spec.accelerator.type,
                     LMSCALE_STANDIN_SPEED="50")  # fmt: skip
    standin.wait_ready(container["readinessProbe"]["httpGet"]["path"])
    assert standin.get(container["startupProbe"]["httpGet"]["path"])[0] == 200
    status, models = standin.get("/v1/models")
    assert status == 200
    served = json.loads(models)["data"][0]["id"]
    # TGI reports the model it loaded; vLLM and SGLang the served name
    assert served == (lmd.spec.model.name if kind is not EngineKind.TGI else container["args"][1])
    response = standin.post("/v1/chat/completions", {
        "model": lmd.spec.model.name, "max_tokens": 4,
        "messages": [{"role": "user", "content": "Say hi"}]})  # fmt: skip
    answer = json.loads(response.read())
    assert response.status == 200
    assert answer["usage"]["completion_tokens"] == 4
    assert standin.stop() == 0


# ----------------------------------------------------------------------------- streaming

def _vllm(port: int, *extra: str) -> list[str]:
    return _command(["vllm", "serve", "meta-llama/Llama-3.1-8B-Instruct"],
                    ["--port", str(port), "--max-model-len", "8192", "--served-model-name",
                     "llama", *extra])  # fmt: skip


def test_stream_arrives_token_by_token_at_the_step_models_pace(standins: list[Standin]) -> None:
    port = _free_port()
    standin = _start(standins, _vllm(port), port, LMSCALE_STANDIN_GPU="nvidia-l4")
    standin.wait_ready()
    tokens = 12
    response = standin.post("/v1/completions", {"model": "llama", "prompt": "Once upon a time",
                                                "max_tokens": tokens, "stream": True})  # fmt: skip
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/event-stream"
    events = list(_events(response))
    assert events[-1][1] == "[DONE]"
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert len(chunks) == tokens, "one chunk per generated token"
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None] * (tokens - 1) + ["length"]
    # The step model says how long a decode step of Llama 3.1 8B on an L4 takes; the stream
    # spreads over about (tokens - 1) of them instead of arriving in one piece.
    plan = plan_replica(catalog.model("llama-3.1-8b"), catalog.gpu("nvidia-l4"), context=8192)
    step = replica_performance(plan).step_seconds(prefill_tokens=0, decode_seqs=1, kv_tokens=0)
    span = events[-2][0] - events[0][0]
    assert span >= 0.5 * (tokens - 1) * step, (span, step)
    assert len({round(t, 2) for t, _ in events[:-1]}) > tokens // 2, "tokens came in a burst"


def test_a_burst_of_concurrent_streams_is_served(standins: list[Standin]) -> None:
    """A load generator opening many streams at once: none refused, each complete, batched."""
    port = _free_port()
    standin = _start(standins, _vllm(port), port, LMSCALE_STANDIN_GPU="nvidia-l40s",
                     LMSCALE_STANDIN_SPEED="5")  # fmt: skip
    standin.wait_ready()
    counts: list[int | str] = []

    def stream() -> None:
        try:
            response = standin.post("/v1/chat/completions", {
                "model": "llama", "stream": True, "max_tokens": 50,
                "messages": [{"role": "user", "content": "hello " * 40}]})  # fmt: skip
            counts.append(sum(1 for _, data in _events(response) if data != "[DONE]"))
        except OSError as error:
            counts.append(repr(error))

    threads = [threading.Thread(target=stream) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert counts == [50] * 100


# ----------------------------------------------------------------------------- metrics

def _queried_names(kind: EngineKind) -> set[str]:
    """Every series name in the PromQL the operator sends for `kind`."""
    source = registry.source_for(kind.value)
    ctx = promql.QueryContext()
    names: set[str] = set()
    for metric in Metric:
        if metric is Metric.GPU_UTILIZATION:
            continue  # DCGM's, not the engine's
        expression = source.expression(metric, ctx)
        if expression:
            names |= set(re.findall(r"\b((?:vllm|sglang):[a-z_:]+|tgi_[a-z_]+)", expression))
    return names


ENGINE_LINES = [
    pytest.param(EngineKind.VLLM, lambda port: _vllm(port), id="vllm"),
    pytest.param(EngineKind.TGI, lambda port: _command(["text-generation-launcher"], [
        "--model-id", "Qwen/Qwen2.5-7B-Instruct", "--port", str(port), "--hostname", "127.0.0.1",
        "--prometheus-port", str(_free_port())]), id="tgi"),
    pytest.param(EngineKind.SGLANG, lambda port: _command(
        ["python3", "-m", "sglang.launch_server"],
        ["--model-path", "Qwen/Qwen2.5-7B-Instruct", "--port", str(port), "--enable-metrics"]),
        id="sglang"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "line"), ENGINE_LINES)
def test_metrics_carry_the_series_the_operator_queries(
    kind: EngineKind, line: Any, standins: list[Standin]
) -> None:
    port = _free_port()
    standin = _start(standins, line(port), port, LMSCALE_STANDIN_SPEED="20")
    standin.wait_ready()
    response = standin.post("/v1/completions", {"model": "m", "prompt": "x" * 400,
                                                "max_tokens": 3})  # fmt: skip
    assert response.status == 200
    response.read()
    status, text = standin.get("/metrics")
    assert status == 200
    samples = {s.name: s for f in text_string_to_metric_families(text.decode()) for s in f.samples}
    queried = _queried_names(kind)
    # a tuple of names lists current and older ones; the current one must be there
    current = {registry.source_for(kind.value).pod_series()} | {
        n for n in queried if not n.startswith("vllm:gpu_cache")  # vLLM < 0.10's name
    }
    missing = sorted(n for n in current if n not in samples)
    assert missing == [], f"{kind.value} /metrics lacks {missing}"
    prompt = next(n for n in queried if "prompt_tokens" in n or "input_length" in n)
    assert samples[prompt].value == 100, "400 characters are about 100 prompt tokens"


# ----------------------------------------------------------------------------- SIGTERM

def test_sigterm_finishes_the_stream_refuses_new_requests_and_exits_0(
    standins: list[Standin],
) -> None:
    port = _free_port()
    standin = _start(standins, _vllm(port), port, LMSCALE_STANDIN_GPU="nvidia-l4")
    standin.wait_ready()
    tokens = 40
    response = standin.post("/v1/completions", {"model": "llama", "prompt": "hi",
                                                "max_tokens": tokens, "stream": True})  # fmt: skip
    events = _events(response)
    first = next(events)
    standin.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 5
    while standin.get("/health")[0] != 503:
        assert time.monotonic() < deadline, "readiness never dropped"
        time.sleep(0.02)
    refused = standin.post("/v1/completions", {"model": "llama", "prompt": "late",
                                               "max_tokens": 2})  # fmt: skip
    assert refused.status == 503
    rest = list(events)
    assert rest[-1][1] == "[DONE]"
    assert len(rest) - 1 == tokens - 1, "every token of the stream in flight arrived"
    assert first[0] < rest[0][0]
    assert standin.process.wait(timeout=30) == 0


def test_cold_start_answers_503_until_the_engine_would_listen(standins: list[Standin]) -> None:
    port = _free_port()
    line = _command(["python3", "-m", "sglang.launch_server"],
                    ["--model-path", "Qwen/Qwen2.5-7B-Instruct", "--port", str(port)])
    standin = _start(standins, line, port, LMSCALE_STANDIN_STARTUP_SECONDS="3")
    deadline = time.monotonic() + 20
    while True:  # wait until it listens
        try:
            first = {path: standin.get(path)[0] for path in ("/health", "/get_model_info")}
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert first == {"/health": 503, "/get_model_info": 503}
    standin.wait_ready("/get_model_info")
    assert standin.get("/health")[0] == 200
    assert standin.stop() == 0
