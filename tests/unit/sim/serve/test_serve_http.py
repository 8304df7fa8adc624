"""The HTTP API of `lmscale sim serve` on a loopback port, with a fake cluster listing."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.unit.sim.serve.test_serve_fleet import FlatSteps

from lmscale.sim.serve import load
from lmscale.sim.serve.fleet import DeploymentInfo, Fleet, PodInfo
from lmscale.sim.serve.server import Simulator, Traces, make_http_server


class FakeCluster:
    """What a poll returns; `fail` makes the next polls raise, as an API outage would."""

    def __init__(self) -> None:
        self.pods: tuple[PodInfo, ...] = (
            PodInfo("chat-0", True, "n1"), PodInfo("chat-1", True, "n1"))
        self.fail = False

    def poll(self) -> list[DeploymentInfo]:
        if self.fail:
            raise ConnectionError("apiserver down")
        return [DeploymentInfo("team-a", "chat", "vllm", "llama", "NVIDIA H100 80GB HBM3", 1,
                               FlatSteps(), self.pods)]


class Client:
    def __init__(self, base: str) -> None:
        self.base = base

    def call(self, method: str, path: str, body: object = None) -> tuple[int, Any, str]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                raw = response.read().decode()
                kind = response.headers["Content-Type"]
                status = response.status
        except urllib.error.HTTPError as error:
            raw, kind, status = error.read().decode(), error.headers["Content-Type"], error.code
        payload = json.loads(raw) if kind == "application/json" else raw
        return status, payload, kind


@pytest.fixture
def served() -> Iterator[tuple[Client, Simulator, FakeCluster]]:
    cluster = FakeCluster()
    tokens = load.Tokens(50, 10)
    fleet = Fleet(default_load=load.Load(load.Constant(0.0), tokens))
    sim = Simulator(fleet, source=cluster.poll, traces=Traces(), tokens=tokens,
                    poll_seconds=3600, tick_seconds=0.05)
    server = make_http_server(sim, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    sim.start()
    thread.start()
    yield Client(f"http://127.0.0.1:{server.server_address[1]}"), sim, cluster
    server.shutdown()
    server.server_close()
    sim.stop()


def test_metrics_are_text_0_0_4_with_engine_names(served: tuple[Client, Simulator, FakeCluster]
                                                   ) -> None:
    client, _, _ = served
    status, text, kind = client.call("GET", "/metrics")

    assert status == 200
    assert kind == "text/plain; version=0.0.4; charset=utf-8"
    assert ('vllm:num_requests_waiting{lmscale_dev_deployment="chat",model_name="llama",'
            'namespace="team-a",pod="chat-0"} 0.0') in text
    assert text.count("\nDCGM_FI_DEV_GPU_UTIL{") == 2


def test_put_load_changes_the_offered_rate(served: tuple[Client, Simulator, FakeCluster]
                                           ) -> None:
    client, sim, _ = served
    status, answer, _ = client.call("PUT", "/load/team-a/chat",
                                    {"rps": 50, "promptTokens": 20, "outputTokens": 5})
    assert status == 200
    assert answer == {"namespace": "team-a", "name": "chat", "load": "constant:50",
                      "promptTokens": 20, "outputTokens": 5}

    def offered() -> int:
        return int(client.call("GET", "/state")[1]["deployments"]["team-a/chat"]["offered"])

    deadline = sim.now() + 5
    while offered() < 5 and sim.now() < deadline:
        threading.Event().wait(0.05)
    state = client.call("GET", "/state")[1]
    chat = state["deployments"]["team-a/chat"]
    assert chat["offered"] >= 5 and chat["offeredRps"] == 50
    assert chat["readyPods"] == ["chat-0", "chat-1"]
    assert state["defaultLoad"] == "constant:0"

    status, answer, _ = client.call("DELETE", "/load/team-a/chat")
    assert status == 200 and answer["load"] == "constant:0"


def test_put_a_step_spec_and_a_trace(served: tuple[Client, Simulator, FakeCluster],
                                     tmp_path: Path) -> None:
    client, _, _ = served
    trace = tmp_path / "t.csv"
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                     "2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:47.0000000,10,2\n")

    assert client.call("PUT", "/load/team-a/chat", {"spec": "steps:1@5,0@5"})[0] == 200
    status, answer, _ = client.call("PUT", "/load/team-a/chat", {"spec": f"trace:{trace}@2x"})
    assert status == 200 and answer["load"] == f"trace:{trace}@2x"


@pytest.mark.parametrize(
    ("path", "body", "status", "problem"),
    [
        pytest.param("/load/team-a/chat", {"rps": "lots"}, 400, "number", id="bad-rps"),
        pytest.param("/load/team-a/chat", {"spec": "poisson:3"}, 400, "unknown kind",
                     id="bad-spec"),
        pytest.param("/load/team-a/chat", {"spec": "trace:/nonexistent.csv"}, 400,
                     "No such file", id="missing-trace"),
        pytest.param("/load/team-a", {"rps": 1}, 404, "/load/<namespace>/<name>",
                     id="no-name"),
    ],
)
def test_bad_load_requests_say_why(served: tuple[Client, Simulator, FakeCluster], path: str,
                                   body: object, status: int, problem: str) -> None:
    client, _, _ = served
    got, answer, _ = client.call("PUT", path, body)

    assert got == status
    assert problem in answer["error"]


def test_unknown_path_is_404(served: tuple[Client, Simulator, FakeCluster]) -> None:
    assert served[0].call("GET", "/nothing")[0] == 404


def test_a_failed_poll_keeps_the_fleet(served: tuple[Client, Simulator, FakeCluster]) -> None:
    client, sim, cluster = served
    cluster.fail = True

    assert sim.poll_once() is False
    assert client.call("GET", "/state")[1]["deployments"]["team-a/chat"]["readyPods"] == [
        "chat-0", "chat-1"]

    cluster.fail, cluster.pods = False, (PodInfo("chat-0", True, "n1"),)
    assert sim.poll_once() is True
    assert client.call("GET", "/state")[1]["deployments"]["team-a/chat"]["readyPods"] == [
        "chat-0"]
