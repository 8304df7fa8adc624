"""An idle fleet on the real control plane: no writes while nothing changes, and a restart
that takes the calibration back from status instead of computing it again."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, ClusterHandle, free_port
from tests.support import apply, events, get, items, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("own_operators_only")]
PERIOD = 2.0
WRITTEN = ("lmd", "deployments", "services", "poddisruptionbudgets")


def lmd(name: str, *, ttft_ms: int) -> dict[str, Any]:
    return {"apiVersion": "lmscale.dev/v1alpha1", "kind": "LanguageModelDeployment",
            "metadata": {"name": name},
            "spec": {"model": {"name": "meta-llama/Llama-3.2-1B",
                               "architecture": "llama-3.2-1b", "maxContextLength": 4096},
                     "accelerator": {"type": "nvidia-l4"},
                     "slo": {"ttftP95Ms": ttft_ms, "tpotP95Ms": 100},
                     "scaling": {"minReplicas": 1, "maxReplicas": 3}}}


class Operator:
    """`lmscale run` for one namespace, with its own /metrics."""

    def __init__(self, cluster: ClusterHandle, namespace: str, log: Path) -> None:
        self.cluster, self.namespace, self.log = cluster, namespace, log
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig),
               "LMSCALE_PROMETHEUS_URL": self.cluster.prometheus_url,
               "LMSCALE_SCALER_PERIOD_SECONDS": str(PERIOD),
               "LMSCALE_METRICS_PORT": str(self.port), "LMSCALE_HEALTH_PORT": str(free_port())}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(REPO / ".venv" / "bin" / "lmscale"), "run", "--standalone",
                 "-n", self.namespace], env=env, stdout=out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def metric(self, name: str) -> float:
        """The sum of a metric's samples whose name and labels start with `name`."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics",
                                        timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return -1.0
        return sum(float(line.rpartition(" ")[2]) for line in text.splitlines()
                   if line.startswith(name))


@contextlib.contextmanager
def operator_for(cluster: ClusterHandle, namespace: str, log: Path) -> Iterator[Operator]:
    process = Operator(cluster, namespace, log)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def versions(cluster: ClusterHandle, namespace: str) -> dict[str, str]:
    return {f"{kind}/{o['metadata']['name']}": o["metadata"]["resourceVersion"]
            for kind in WRITTEN for o in items(cluster, namespace, kind)}


def calibrated(cluster: ClusterHandle, namespace: str, name: str) -> dict[str, Any] | None:
    body = get(cluster, namespace, "lmd", name) or {}
    plan = (body.get("status") or {}).get("capacityPlan") or {}
    return (plan.get("autoscaling") or {}).get("calibration")


def test_a_steady_fleet_writes_nothing_over_several_cycles(
        cluster: ClusterHandle, lmscale_crds: None, namespace: str, tmp_path: Path) -> None:
    log = tmp_path / "operator.log"
    names = [f"idle-{i}" for i in range(3)]
    with operator_for(cluster, namespace, log) as operator:
        for name in names:
            apply(cluster, namespace, lmd(name, ttft_ms=1000))
        for name in names:
            wait_for(lambda n=name: calibrated(cluster, namespace, n), timeout=120,
                     message=f"{name}'s calibration in status")
        # Settled: the first cycles write (conditions, the missing-metrics count up to the
        # fallback threshold); then nothing moves for four cycles.
        last: dict[str, Any] = {"versions": {}, "since": time.monotonic()}

        def settled() -> bool:
            now = versions(cluster, namespace)
            if now != last["versions"]:
                last.update(versions=now, since=time.monotonic())
            return time.monotonic() - last["since"] >= 4 * PERIOD

        wait_for(settled, timeout=120, message="a fleet that stops writing")
        before, before_events = versions(cluster, namespace), len(events(cluster, namespace))
        cycles = operator.metric("lmscale_scaling_cycle_duration_seconds_count")
        # Longer than the scaler's history refresh (30 s), which used to rewrite status.
        time.sleep(35)
        assert operator.metric("lmscale_scaling_cycle_duration_seconds_count") >= cycles + 10
        after = versions(cluster, namespace)
        moved = {k: (v, after.get(k)) for k, v in before.items() if after.get(k) != v}
        assert not moved, moved
        assert len(events(cluster, namespace)) == before_events
    text = log.read_text(errors="replace")
    assert "Traceback" not in text and "HTTP response body" not in text, text[-3000:]


def test_a_restarted_operator_takes_the_calibration_back_from_status(
        cluster: ClusterHandle, lmscale_crds: None, namespace: str, tmp_path: Path) -> None:
    log = tmp_path / "operator.log"
    # An SLO no other test uses: this process computes it, nothing else has.
    apply(cluster, namespace, lmd("restart", ttft_ms=777))
    with operator_for(cluster, namespace, log) as operator:
        record = wait_for(lambda: calibrated(cluster, namespace, "restart"), timeout=120,
                          message="the calibration in status")
        assert operator.metric('lmscale_calibrations_total{source="computed"}') == 1
        operator.stop()
        operator.start()
        wait_for(lambda: operator.metric("lmscale_scaling_decisions_total") >= 1, timeout=60,
                 message="a decision after the restart")
        assert operator.metric('lmscale_calibrations_total{source="persisted"}') == 1
        assert operator.metric('lmscale_calibrations_total{source="computed"}') == 0
        assert operator.metric("lmscale_calibration_cpu_seconds_count") == 0
        # Its first cycle already decided: nothing was held for calibrating.
        assert operator.metric("lmscale_scaling_cycle_duration_seconds_count") <= 2
        assert calibrated(cluster, namespace, "restart") == record
    assert "calibrated llama-3.2-1b" in log.read_text(errors="replace")  # the first process


def test_a_changed_input_is_calibrated_again(
        cluster: ClusterHandle, lmscale_crds: None, namespace: str, tmp_path: Path) -> None:
    log = tmp_path / "operator.log"
    apply(cluster, namespace, lmd("change", ttft_ms=778))
    with operator_for(cluster, namespace, log) as operator:
        first = wait_for(lambda: calibrated(cluster, namespace, "change"), timeout=120,
                         message="the first calibration")
        apply(cluster, namespace, lmd("change", ttft_ms=779))
        second = wait_for(
            lambda: (c := calibrated(cluster, namespace, "change")) and c != first and c,
            timeout=120, message="a new calibration for the new SLO")
        assert second["inputs"] != first["inputs"]
        assert operator.metric('lmscale_calibrations_total{source="computed"}') == 2


def test_new_specs_calibrating_hold_neither_the_scaler_nor_each_other(
        cluster: ClusterHandle, lmscale_crds: None, namespace: str, tmp_path: Path) -> None:
    """Twelve specs the process has never seen, each of whose `gpusPerReplica: auto` choice
    needs calibrations: they compute one at a time in the background while the scaler's
    cycles go on, and each resource gets its children as soon as its own choice is made."""
    log = tmp_path / "operator.log"
    names = [f"fresh-{i}" for i in range(12)]
    with operator_for(cluster, namespace, log) as operator:
        wait_for(lambda: operator.metric("lmscale_scaling_cycle_duration_seconds_count") >= 1,
                 timeout=60, message="the scaler's first cycle")
        cycles = operator.metric("lmscale_scaling_cycle_duration_seconds_count")
        for i, name in enumerate(names):  # SLOs no other test uses: nothing is cached
            apply(cluster, namespace, lmd(name, ttft_ms=1301 + i))
        wait_for(lambda: operator.metric("lmscale_scaling_cycle_duration_seconds_count")
                 >= cycles + 3, timeout=120, message="three scaler cycles")
        # The old scaler resolved every spec in its cycle, waiting for their calibrations.
        assert len(items(cluster, namespace, "deployments")) < len(names)
        wait_for(lambda: all(calibrated(cluster, namespace, n) for n in names), timeout=600,
                 message="every resource chosen and calibrated")
        assert {d["metadata"]["name"] for d in items(cluster, namespace, "deployments")} == set(
            names)
    text = log.read_text(errors="replace")
    assert "candidate degrees calibrating" in text
    assert "Traceback" not in text and "HTTP response body" not in text, text[-3000:]
