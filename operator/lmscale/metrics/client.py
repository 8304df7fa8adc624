"""The one place lmscale sends HTTP to Prometheus: one GET of the instant-query API.

The client is urllib3 (already under the Kubernetes client), pooled, with no retries:
the next cycle is the retry, and a back-off inside a cycle would stretch it past its period
while Prometheus is down. Failures come out as `QueryError` with a `kind` (connection,
timeout, http, auth, response) so the reader can count them by kind and report them in
MetricsAvailable; nothing here decides what a failure means for scaling.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import urllib3

from lmscale.settings import PrometheusSettings

ERROR_KINDS = ("connection", "timeout", "http", "auth", "response")
QUERY_PATH = "/api/v1/query"


class QueryError(Exception):
    """A query that produced no answer; `kind` is one of ERROR_KINDS."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class PrometheusClient:
    """Instant queries at a given time, with the operator's auth, CA bundle and timeout."""

    def __init__(self, settings: PrometheusSettings) -> None:
        self._settings = settings
        self._endpoint = settings.url.rstrip("/") + QUERY_PATH
        # A CA bundle path verifies against it; otherwise the system trust store.
        self._pool = urllib3.PoolManager(
            num_pools=2, maxsize=8, cert_reqs="CERT_REQUIRED",
            ca_certs=str(settings.ca_file) if settings.ca_file else None)

    @property
    def ca_certs(self) -> str | None:
        """The CA bundle https verifies against (None: the system trust store)."""
        value = self._pool.connection_pool_kw.get("ca_certs")
        return str(value) if value is not None else None

    def query(self, promql: str, *, now: float) -> Any:
        """The `result` of an instant query evaluated at `now` (so `time()` is `now`)."""
        timeout = self._settings.timeout_seconds
        fields = {"query": promql, "time": f"{now:.3f}", "timeout": f"{timeout:g}s"}
        try:
            response = self._pool.request(
                "GET", self._endpoint, fields=fields, headers=self._headers(),
                timeout=urllib3.Timeout(total=timeout), retries=False, redirect=False)
        except urllib3.exceptions.NewConnectionError as error:  # (a ConnectTimeoutError too)
            raise QueryError("connection", f"cannot reach {self._settings.url}: {error}") from error
        except urllib3.exceptions.TimeoutError as error:
            raise QueryError("timeout", f"no answer within {timeout:g}s: {error}") from error
        except urllib3.exceptions.HTTPError as error:
            raise QueryError("connection", f"cannot reach {self._settings.url}: {error}") from error
        return _result(response.status, response.data)

    def close(self) -> None:
        self._pool.clear()

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._settings.username:
            basic = f"{self._settings.username}:{self._settings.password or ''}"
            headers["Authorization"] = urllib3.make_headers(basic_auth=basic)["authorization"]
        # Read on every query: projected service-account tokens are rotated on disk.
        if self._settings.bearer_token_file is not None:
            try:
                token = Path(self._settings.bearer_token_file).read_text().strip()
            except OSError as error:
                raise QueryError("auth", f"cannot read bearer token file: {error}") from error
            headers["Authorization"] = f"Bearer {token}"
        return headers


def _result(status: int, body: bytes) -> Any:
    """The `data.result` of an answer, or the QueryError it amounts to."""
    if status != 200:
        kind = "auth" if status in (401, 403) else "http"
        raise QueryError(kind, _truncate(f"HTTP {status}: {_error_text(body)}"))
    try:
        answer = json.loads(body)
        if answer.get("status") != "success":
            raise ValueError(f"status {answer.get('status')!r}: {answer.get('error')}")
        return answer["data"]["result"]
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise QueryError("response", _truncate(f"unreadable answer: {error!r}")) from error


def _error_text(body: bytes) -> str:
    """Prometheus' own `error` field when the body is its JSON error, else the body."""
    text = body.decode("utf-8", "replace")
    try:
        answer = json.loads(text)
    except ValueError:
        return text
    return str(answer.get("error", text)) if isinstance(answer, dict) else text


def _truncate(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
