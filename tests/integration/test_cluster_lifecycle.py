"""`up` is idempotent and `down` leaves no process behind, on a second cluster of its own."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from lmscale.devcluster import cluster, processes
from lmscale.devcluster.layout import Layout, Ports

pytestmark = pytest.mark.cluster


def processes_using(path: Path) -> list[int]:
    """Pids whose command line mentions `path` (each component gets its state dir there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(path) in cmdline and int(entry.name) != os.getpid():
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(os.environ.get("LMSCALE_TEST_KUBECONFIG") is not None,
                    reason="exercises the local control plane itself")
def test_up_twice_then_down_leaves_nothing(tmp_path: Path) -> None:
    base = Layout.default()
    # Ports below Linux's ephemeral range (32768-60999), where an outgoing connection may sit.
    layout = dataclasses.replace(base, root=tmp_path / "second", real_node=False, ports=Ports(
        etcd_client=24790, etcd_peer=24800, apiserver=26443, controller_manager=30257,
        scheduler=30259, kwok=30247, prometheus=29090))
    try:
        cluster.up(layout)
        first = cluster.status(layout)
        assert all(first.values()), first
        cluster.up(layout)  # idempotent: same processes, still healthy
        assert cluster.status(layout) == first
    finally:
        cluster.down(layout)
    assert not any(processes.running_pid(layout.pids, name) for name in cluster.COMPONENTS)
    assert processes_using(layout.root) == []
    assert not layout.root.exists()
