"""Leader election on a real Lease: what the holder writes, losing it, and stopping while the
apiserver does not answer (through a TCP proxy the test can freeze)."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ClusterHandle, free_port

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("own_operators_only")]
CRD = "languagemodeldeployments.lmscale.dev"


class FreezableProxy:
    """Forwards TCP to the apiserver until frozen; frozen, it accepts and answers nothing,
    and every open connection hangs: an apiserver that stopped answering."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.frozen = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.listener, selectors.EVENT_READ, None)
        while not self._stop.is_set():
            for key, _ in sel.select(timeout=0.2):
                if key.data is None:
                    client, _ = self.listener.accept()
                    if self.frozen.is_set():
                        continue  # accepted, never answered (kept open by the list below)
                    upstream = socket.create_connection(self.target)
                    sel.register(client, selectors.EVENT_READ, upstream)
                    sel.register(upstream, selectors.EVENT_READ, client)
                elif not self.frozen.is_set():
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    try:
                        data = source.recv(65536)
                    except OSError:
                        data = b""
                    if data:
                        key.data.sendall(data)
                    else:
                        for s in (source, key.data):
                            with contextlib.suppress(KeyError, ValueError):
                                sel.unregister(s)
                            s.close()
            if self.frozen.is_set():
                time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.listener.close()


def _kubeconfig_through(kubeconfig: Path, port: int, directory: Path) -> Path:
    config = yaml.safe_load(kubeconfig.read_text())
    for entry in config["clusters"]:
        entry["cluster"]["server"] = f"https://127.0.0.1:{port}"
    path = directory / "proxied.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def _server_address(kubeconfig: Path) -> tuple[str, int]:
    server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    host, _, port = server.removeprefix("https://").partition(":")
    return host, int(port or 443)


@contextlib.contextmanager
def _operator(kubeconfig: Path, namespace: str, log: Path, *, name: str
              ) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "POD_NAME": name,
           "POD_NAMESPACE": namespace, "LMSCALE_METRICS_PORT": str(free_port()),
           "LMSCALE_SCALER_PERIOD_SECONDS": "2", "LMSCALE_LOG_LEVEL": "INFO"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "lmscale", "run", f"--namespace={namespace}",
             "--lease=lmscale-test"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_for(what: str, check: Callable[[], Any], *, timeout: float = 60.0,
              log: Path | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-3000:] if log else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{tail}")


def _lease(cluster: ClusterHandle, namespace: str) -> dict[str, Any]:
    result = cluster.kubectl("get", "lease", "lmscale-test", "-n", namespace, "-o", "json",
                             check=False)
    return json.loads(result.stdout) if result.returncode == 0 else {}


def _holder(cluster: ClusterHandle, namespace: str) -> str:
    return str((_lease(cluster, namespace).get("spec") or {}).get("holderIdentity") or "")


def test_the_holder_renews_and_touches_nothing_on_the_crd(
        cluster: ClusterHandle, kubeconfig_path: Path, lmscale_crds: None, namespace: str,
        tmp_path: Path) -> None:
    before = json.loads(cluster.kubectl("get", "crd", CRD, "-o", "json").stdout)["metadata"]
    log = tmp_path / "operator.log"
    with _operator(kubeconfig_path, namespace, log, name="leader-a") as process:
        _wait_for("the Lease", lambda: _holder(cluster, namespace) == "leader-a", log=log)
        first = _lease(cluster, namespace)["spec"]
        assert first["leaseDurationSeconds"] == 15
        _wait_for("a renewal", lambda: _lease(cluster, namespace)["spec"]["renewTime"]
                  != first["renewTime"], timeout=10, log=log)
        _wait_for("the scaling loop", lambda: "scaling loop started" in log.read_text(),
                  log=log)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    # Handed back on a clean stop, so a standby need not wait out the lease.
    assert _holder(cluster, namespace) == "", _lease(cluster, namespace)
    after = json.loads(cluster.kubectl("get", "crd", CRD, "-o", "json").stdout)["metadata"]
    assert after.get("finalizers") == before.get("finalizers")
    assert not [k for k in after.get("annotations") or {} if "kopf" in k], after
    assert after["resourceVersion"] == before["resourceVersion"], "the CRD object was written"


def test_a_holder_that_loses_the_lease_stops_and_exits(
        cluster: ClusterHandle, kubeconfig_path: Path, lmscale_crds: None, namespace: str,
        tmp_path: Path) -> None:
    log = tmp_path / "operator.log"
    with _operator(kubeconfig_path, namespace, log, name="leader-b") as process:
        _wait_for("the Lease", lambda: _holder(cluster, namespace) == "leader-b", log=log)
        # Another holder writes itself in (as a replica that saw the lease expire would).
        lease = _lease(cluster, namespace)
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lease["spec"].update(holderIdentity="usurper", renewTime=stamp,
                             leaseDurationSeconds=3600)
        cluster.kubectl("replace", "-f", "-", stdin=json.dumps(lease))
        started = time.monotonic()
        code = process.wait(timeout=30)
        elapsed = time.monotonic() - started
    text = log.read_text(errors="replace")
    assert code == 1, text[-3000:]
    assert "leadership lost" in text
    assert elapsed < 20  # the renew deadline (10 s) and a retry, not a lease duration more
    assert _holder(cluster, namespace) == "usurper"  # never written back by the old holder


def test_sigterm_exits_within_seconds_while_the_apiserver_is_unreachable(
        cluster: ClusterHandle, kubeconfig_path: Path, lmscale_crds: None, namespace: str,
        tmp_path: Path) -> None:
    proxy = FreezableProxy(_server_address(kubeconfig_path))
    log = tmp_path / "operator.log"
    try:
        kubeconfig = _kubeconfig_through(kubeconfig_path, proxy.port, tmp_path)
        with _operator(kubeconfig, namespace, log, name="leader-c") as process:
            _wait_for("the Lease", lambda: _holder(cluster, namespace) == "leader-c", log=log)
            _wait_for("the scaling loop", lambda: "scaling loop started" in log.read_text(),
                      log=log)
            proxy.frozen.set()
            time.sleep(3)  # requests now hang on open connections
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pytest.fail("still running 30 s after SIGTERM:\n"
                            + log.read_text(errors="replace")[-3000:])
            elapsed = time.monotonic() - started
    finally:
        proxy.close()
    assert elapsed < 12, f"{elapsed:.1f} s to exit\n{log.read_text(errors='replace')[-3000:]}"
