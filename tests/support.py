"""Small helpers the integration tests share: polling and reading objects through kubectl."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import yaml

from tests.conftest import ClusterHandle

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], *, timeout: float, message: str,
             interval: float = 0.5) -> T:
    """Poll until `predicate` returns something truthy; return it."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s: {message} (last: {last!r})")


def apply(cluster: ClusterHandle, namespace: str, manifest: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(manifest))


def get(cluster: ClusterHandle, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    result = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json",
                             "--show-managed-fields", check=False)
    if result.returncode != 0:
        if "NotFound" in result.stderr:
            return None
        raise AssertionError(result.stderr)
    return dict(json.loads(result.stdout))


def items(cluster: ClusterHandle, namespace: str, kind: str, selector: str | None = None
          ) -> list[dict[str, Any]]:
    args = ["get", kind, "-n", namespace, "-o", "json"]
    if selector:
        args += ["-l", selector]
    return list(json.loads(cluster.kubectl(*args).stdout)["items"])


def condition(body: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for c in ((body or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return dict(c)
    return {}


def events(cluster: ClusterHandle, namespace: str, *, reason: str | None = None
           ) -> list[dict[str, Any]]:
    found = items(cluster, namespace, "events")
    return [e for e in found if reason is None or e.get("reason") == reason]
