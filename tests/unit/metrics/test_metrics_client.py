"""The HTTP client, over real HTTP to a stub server: auth, parameters, error kinds, no retries."""

from __future__ import annotations

import base64
import dataclasses
import http.server
import json
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from lmscale.metrics.client import PrometheusClient, QueryError
from lmscale.settings import PrometheusSettings

VECTOR = {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}}


@dataclasses.dataclass
class Reply:
    status: int = 200
    body: bytes = json.dumps(VECTOR).encode()


@dataclasses.dataclass
class StubPrometheus:
    """Answers every request with `reply` and records what it was asked."""

    url: str = ""
    reply: Reply = dataclasses.field(default_factory=Reply)
    requests: list[tuple[dict[str, list[str]], dict[str, str]]] = dataclasses.field(
        default_factory=list
    )


@pytest.fixture
def stub() -> Iterator[StubPrometheus]:
    state = StubPrometheus()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            state.requests.append((query, dict(self.headers)))
            self.send_response(state.reply.status)
            self.send_header("Content-Length", str(len(state.reply.body)))
            self.end_headers()
            self.wfile.write(state.reply.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def client_for(url: str, **settings: object) -> PrometheusClient:
    return PrometheusClient(PrometheusSettings(url=url, **settings))  # type: ignore[arg-type]


def test_instant_query_at_now_with_timeout(stub: StubPrometheus) -> None:
    result = client_for(stub.url, timeout_seconds=2.5).query("up", now=1700000000.25)

    assert result == [{"metric": {}}]
    (params, headers) = stub.requests[0]
    assert params == {"query": ["up"], "time": ["1700000000.250"], "timeout": ["2.5s"]}
    assert "Authorization" not in headers


def test_bearer_token_is_read_on_every_query(stub: StubPrometheus, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    client = client_for(stub.url, bearer_token_file=token)

    client.query("up", now=0)
    token.write_text("rotated")
    client.query("up", now=0)

    assert [h["Authorization"] for _, h in stub.requests] == ["Bearer first", "Bearer rotated"]


def test_basic_auth(stub: StubPrometheus) -> None:
    client_for(stub.url, username="ops", password="s3cret").query("up", now=0)

    expected = "Basic " + base64.b64encode(b"ops:s3cret").decode()
    assert stub.requests[0][1]["Authorization"] == expected


def test_ca_bundle_is_what_https_verifies_against(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    client = client_for("https://prometheus.example:9090", ca_file=ca)

    assert client.ca_certs == str(ca)
    assert client_for("https://prometheus.example:9090").ca_certs is None


def test_unreadable_token_file_is_an_auth_error(stub: StubPrometheus, tmp_path: Path) -> None:
    client = client_for(stub.url, bearer_token_file=tmp_path / "gone")

    with pytest.raises(QueryError) as raised:
        client.query("up", now=0)

    assert raised.value.kind == "auth"
    assert stub.requests == []


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        pytest.param(Reply(401, b"unauthorized"), "auth", id="401"),
        pytest.param(Reply(403, b"forbidden"), "auth", id="403"),
        pytest.param(Reply(400, b'{"status":"error","error":"parse error"}'), "http", id="400"),
        pytest.param(Reply(503, b"unavailable"), "http", id="503-not-retried"),
        pytest.param(Reply(200, b"<html>"), "response", id="not-json"),
        pytest.param(Reply(200, b'{"status":"success"}'), "response", id="no-data"),
    ],
)
def test_error_kinds(stub: StubPrometheus, reply: Reply, kind: str) -> None:
    stub.reply = reply

    with pytest.raises(QueryError) as raised:
        client_for(stub.url).query("up", now=0)

    assert raised.value.kind == kind
    assert len(stub.requests) == 1  # the next cycle is the retry


def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, not listening

        with pytest.raises(QueryError) as raised:
            client_for(url).query("up", now=0)

    assert raised.value.kind == "connection"


def test_no_answer_is_a_timeout() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()  # accepts connections, never answers
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"

        with pytest.raises(QueryError) as raised:
            client_for(url, timeout_seconds=0.2).query("up", now=0)

    assert raised.value.kind == "timeout"
