"""The one place lmscale sends HTTP to Prometheus, through prometheus-api-client.

Failures come out as `QueryError` with a `kind` (connection, timeout, http, auth, response)
so the reader can count them by kind and report them in MetricsAvailable; nothing here
decides what a failure means for scaling.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import requests
import urllib3
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from lmscale.settings import PrometheusSettings

ERROR_KINDS = ("connection", "timeout", "http", "auth", "response")
_STATUS = re.compile(r"HTTP Status Code (\d+)")


class QueryError(Exception):
    """A query that produced no answer; `kind` is one of ERROR_KINDS."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class PrometheusClient:
    """Instant queries at a given time, with the operator's auth, CA bundle and timeout."""

    def __init__(self, settings: PrometheusSettings) -> None:
        self._settings = settings
        session = requests.Session()
        # A CA bundle path verifies against it; otherwise the system trust store.
        session.verify = str(settings.ca_file) if settings.ca_file else True
        auth = (settings.username, settings.password) if settings.username else None
        self._connect = PrometheusConnect(
            url=settings.url,
            session=session,
            auth=auth,
            timeout=settings.timeout_seconds,
            # No retries inside a cycle: the next cycle is the retry, and a retry with
            # back-off would stretch a cycle past its period while Prometheus is down.
            # read=False re-raises read timeouts as such instead of as "max retries".
            retry=Retry(total=0, read=False),
        )

    def query(self, promql: str, *, now: float) -> Any:
        """The `result` of an instant query evaluated at `now` (so `time()` is `now`)."""
        timeout = self._settings.timeout_seconds
        try:
            self._connect.headers = self._headers()
            return self._connect.custom_query(
                promql,
                params={"time": f"{now:.3f}", "timeout": f"{timeout:g}s"},
                timeout=timeout,
            )
        except requests.Timeout as error:
            raise QueryError("timeout", f"no answer within {timeout:g}s: {error}") from error
        except (requests.ConnectionError, urllib3.exceptions.HTTPError) as error:
            raise QueryError("connection", f"cannot reach {self._settings.url}: {error}") from error
        except PrometheusApiClientException as error:
            raise _http_error(error) from error
        except (requests.RequestException, ValueError, KeyError, TypeError) as error:
            raise QueryError("response", f"unreadable answer: {error!r}") from error

    def close(self) -> None:
        self._connect.close()

    def _headers(self) -> dict[str, str] | None:
        # Read on every query: projected service-account tokens are rotated on disk.
        if self._settings.bearer_token_file is None:
            return None
        try:
            token = Path(self._settings.bearer_token_file).read_text().strip()
        except OSError as error:
            raise QueryError("auth", f"cannot read bearer token file: {error}") from error
        return {"Authorization": f"Bearer {token}"}


def _http_error(error: PrometheusApiClientException) -> QueryError:
    match = _STATUS.search(str(error))
    status = int(match.group(1)) if match else 0
    kind = "auth" if status in (401, 403) else "http"
    return QueryError(kind, _truncate(str(error)))


def _truncate(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
