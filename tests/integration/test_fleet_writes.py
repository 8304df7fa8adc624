"""Writes to a new resource on the real control plane: each one comes back as a watch event
that every operator decodes, so at fleet scale they set the operator's memory peak."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ClusterHandle
from tests.integration.test_fleet_idle import PERIOD, lmd, operator_for
from tests.support import apply, get, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("own_operators_only")]


def watched_versions(cluster: ClusterHandle, namespace: str, seen: list[dict[str, Any]],
                     stop: threading.Event) -> subprocess.Popen[str]:
    """Every version of the namespace's resources a watch sees, appended to `seen`."""
    process = subprocess.Popen(
        [cluster.kubectl_path, "--kubeconfig", str(cluster.kubeconfig), "get", "lmd", "-n",
         namespace, "--watch", "-o", "json"], stdout=subprocess.PIPE, text=True)

    def read() -> None:
        assert process.stdout is not None
        decoder, text = json.JSONDecoder(), ""
        for line in process.stdout:
            text += line
            try:
                seen.append(decoder.raw_decode(text.strip())[0])
                text = ""
            except ValueError:
                continue
            if stop.is_set():
                return

    threading.Thread(target=read, daemon=True).start()
    return process


def test_a_new_resource_is_written_once_before_its_first_scaler_cycle(
        cluster: ClusterHandle, lmscale_crds: None, namespace: str, tmp_path: Path) -> None:
    """The reconciler's first status carries kopf's diff-base (no patch of kopf's own after
    it), and the scaler writes nothing before it (no status rewritten a moment later)."""
    seen: list[dict[str, Any]] = []
    stop = threading.Event()
    watch = watched_versions(cluster, namespace, seen, stop)
    try:
        with operator_for(cluster, namespace, tmp_path / "operator.log"):
            time.sleep(3)  # the operator watches before the resource exists
            apply(cluster, namespace, lmd("writes", ttft_ms=1000))
            wait_for(lambda: "observedGeneration" in ((get(cluster, namespace, "lmd", "writes")
                                                       or {}).get("status") or {}),
                     timeout=60, message="the reconciler's status")
            time.sleep(3 * PERIOD)
    finally:
        stop.set()
        watch.terminate()
    versions = [o for o in seen if o["metadata"]["name"] == "writes"]
    versions = [v for i, v in enumerate(versions)  # a watch may repeat one at its start
                if i == 0 or v["metadata"]["resourceVersion"]
                != versions[i - 1]["metadata"]["resourceVersion"]]
    statuses = [v.get("status") or {} for v in versions]
    assert statuses and not statuses[0], "the watch saw the resource as created"
    assert len(statuses) >= 3, [sorted(s) for s in statuses]  # reconciler, then scaler
    first = statuses[1]
    assert "observedGeneration" in first, f"written before the reconciler: {sorted(first)}"
    assert "lastHandledConfiguration" in (first.get("kopf") or {}), sorted(first)
    # kopf's diff-base alone never makes a write of its own
    for before, after in zip(statuses, statuses[1:], strict=False):
        rest = {k: v for k, v in after.items() if k != "kopf"}
        assert rest != {k: v for k, v in before.items() if k != "kopf"}, sorted(after)
