"""The stand-in's HTTP server: the OpenAI API, health, readiness and /metrics of one replica.

Paths per engine are the real engine's (the ones lmscale's probes use among them):
vLLM `/health`; TGI `/health`, `/info`; SGLang `/health`, `/health_generate`,
`/get_model_info`; all three `/v1/models`, `/v1/completions`, `/v1/chat/completions` and
`/metrics`. Streams are Server-Sent Events over chunked transfer, one `data:` chunk per
generated token at the step model's pace, then `data: [DONE]`.

SIGTERM (`drain`): new requests and health checks answer 503, so readiness drops and
clients retry elsewhere; requests in flight run to their last token; then the server stops.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lmscale.api import EngineKind
from lmscale.sim.standin import metrics
from lmscale.sim.standin.cli import Config
from lmscale.sim.standin.replica import Replica

# A few words the generated text cycles through: the stand-in has no tokenizer or weights.
_WORDS = ("the", "model", "says", "hello", "from", "a", "stand-in", "replica")
DEFAULT_MAX_TOKENS = 16


def count_tokens(text: str) -> int:
    """Prompt tokens without a tokenizer: about four characters per token, as BPE averages."""
    return max(1, round(len(text) / 4))


class State:
    """What every handler thread shares: the replica, the config, the drain switch."""

    def __init__(self, config: Config, replica: Replica) -> None:
        self.config = config
        self.replica = replica
        self.started = time.monotonic()
        self.draining = threading.Event()
        self._lock = threading.Lock()
        self._active = 0
        self.idle = threading.Condition(self._lock)

    def warm(self) -> bool:
        """Past the simulated cold start (LMSCALE_STANDIN_STARTUP_SECONDS)."""
        return time.monotonic() - self.started >= self.config.startup_seconds

    def ready(self) -> bool:
        return self.warm() and not self.draining.is_set()

    def enter(self) -> bool:
        """Admit one generation unless draining."""
        with self._lock:
            if self.draining.is_set():
                return False
            self._active += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._active -= 1
            self.idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._lock:
            return self.idle.wait_for(lambda: self._active == 0, timeout)

    @property
    def active(self) -> int:
        with self._lock:
            return self._active


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's
    # delayed ACK (40 ms on Linux) on a kept-alive connection. Uvicorn sets TCP_NODELAY too.
    disable_nagle_algorithm = True
    server: StandinServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # one line per request would drown a load test's output

    # ----------------------------------------------------------------- routing

    def do_GET(self) -> None:  # noqa: N802
        state, kind = self.server.state, self.server.state.config.kind
        path = self.path.split("?", 1)[0]
        if not state.warm() and path != "/metrics":
            # a real engine listens only once its weights are loaded: nothing answers yet
            self._empty(HTTPStatus.SERVICE_UNAVAILABLE)
        elif path in self._health_paths(kind):
            self._empty(HTTPStatus.OK if state.ready() else HTTPStatus.SERVICE_UNAVAILABLE)
        elif path == "/get_model_info" and kind is EngineKind.SGLANG:
            self._json(HTTPStatus.OK, {"model_path": state.config.model,
                                       "tokenizer_path": state.config.model,
                                       "is_generation": True})
        elif path == "/info" and kind is EngineKind.TGI:
            self._json(HTTPStatus.OK, {"model_id": state.config.model,
                                       "max_total_tokens": state.config.max_model_len})
        elif path == "/v1/models":
            self._json(HTTPStatus.OK, self._models())
        elif path == "/metrics":
            body = metrics.render(kind, state.replica, state.config.served_name)
            self._send(HTTPStatus.OK, body, metrics.CONTENT_TYPE)
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no route {path}")

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        if path not in ("/v1/completions", "/v1/chat/completions"):
            self._error(HTTPStatus.NOT_FOUND, f"no route {path}")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
        except ValueError as error:
            self._error(HTTPStatus.BAD_REQUEST, f"invalid JSON body: {error}")
            return
        state = self.server.state
        if not state.ready() or not state.enter():
            self._error(HTTPStatus.SERVICE_UNAVAILABLE, "the server is shutting down")
            return
        try:
            self._generate(path == "/v1/chat/completions", body)
        finally:
            state.leave()

    @staticmethod
    def _health_paths(kind: EngineKind) -> tuple[str, ...]:
        if kind is EngineKind.SGLANG:
            return ("/health", "/health_generate")
        return ("/health",)

    # ----------------------------------------------------------------- generation

    def _generate(self, chat: bool, body: dict[str, Any]) -> None:
        state = self.server.state
        prompt = _prompt_text(body, chat)
        max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens")
                         or DEFAULT_MAX_TOKENS)
        prompt_tokens = count_tokens(prompt)
        limit = state.config.max_model_len
        if limit is not None and prompt_tokens + max_tokens > limit:
            self._error(HTTPStatus.BAD_REQUEST,
                        f"This model's maximum context length is {limit} tokens. However, you "
                        f"requested {prompt_tokens + max_tokens} tokens "
                        f"({prompt_tokens} in the messages, {max_tokens} in the completion).")
            return
        replica = state.replica
        ticket = replica.submit(prompt_tokens, max_tokens)
        ident = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": max_tokens,
                 "total_tokens": prompt_tokens + max_tokens}
        if not body.get("stream"):
            replica.wait_done(ticket)
            text = " ".join(_WORDS[i % len(_WORDS)] for i in range(max_tokens))
            self._json(HTTPStatus.OK, self._completion(ident, chat, text, usage))
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        at = replica.wait_first_token(ticket)
        for index in range(max_tokens):
            if index == max_tokens - 1 and index > 0:
                replica.wait_done(ticket)  # the last token comes when the engine finishes
            elif index > 0:
                at += replica.decode_step()
                done = ticket.done
                replica.sleep_until(min(at, done.finished_s) if done else at)
            last = index == max_tokens - 1
            word = ("" if index == 0 else " ") + _WORDS[index % len(_WORDS)]
            self._chunk(self._delta(ident, chat, word, "length" if last else None))
        options = body.get("stream_options") or {}
        if options.get("include_usage"):
            self._chunk({**self._delta(ident, chat, "", None), "choices": [], "usage": usage})
        self._chunk("[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _model_field(self) -> str:
        return self.server.state.config.served_name

    def _completion(self, ident: str, chat: bool, text: str, usage: dict[str, int]) -> dict:
        choice: dict[str, Any] = {"index": 0, "finish_reason": "length", "logprobs": None}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        return {"id": ident, "object": "chat.completion" if chat else "text_completion",
                "created": int(time.time()), "model": self._model_field(),
                "choices": [choice], "usage": usage}

    def _delta(self, ident: str, chat: bool, word: str, finish: str | None) -> dict:
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish, "logprobs": None}
        if chat:
            choice["delta"] = {"content": word} if word else {}
        else:
            choice["text"] = word
        return {"id": ident, "object": "chat.completion.chunk" if chat else "text_completion",
                "created": int(time.time()), "model": self._model_field(), "choices": [choice]}

    def _models(self) -> dict:
        config = self.server.state.config
        card = {"id": config.served_name, "object": "model", "created": int(time.time()),
                "owned_by": "vllm" if config.kind is EngineKind.VLLM else config.served_name,
                "root": config.model, "max_model_len": config.max_model_len}
        return {"object": "list", "data": [card]}

    # ----------------------------------------------------------------- HTTP plumbing

    def _chunk(self, payload: dict | str) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        data = f"data: {text}\n\n".encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _empty(self, status: HTTPStatus) -> None:
        self._send(status, b"", "text/plain")

    def _json(self, status: HTTPStatus, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._json(status, {"object": "error", "message": message, "type": status.phrase,
                            "code": int(status)})


def _prompt_text(body: dict[str, Any], chat: bool) -> str:
    if not chat:
        prompt = body.get("prompt", "")
        return " ".join(prompt) if isinstance(prompt, list) else str(prompt)
    parts = []
    for message in body.get("messages") or []:
        content = message.get("content", "") if isinstance(message, dict) else ""
        if isinstance(content, list):  # [{"type": "text", "text": ...}]
            content = " ".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
        parts.append(f"<|{message.get('role', 'user')}|> {content}")
    return "\n".join(parts)


class StandinServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog is 5: a burst of clients would be reset. Uvicorn
    # (vLLM, SGLang) listens with 2048.
    request_queue_size = 2048

    def __init__(self, address: tuple[str, int], state: State) -> None:
        super().__init__(address, Handler)
        self.state = state
