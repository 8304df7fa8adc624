"""Two operator replicas under leader election: only the one holding the Lease exports
per-model gauges, so the chart's PrometheusRule never reads a second, frozen copy.

The leader drops every per-model gauge when its scaling loop stops (and exits on losing the
Lease); a standby never starts the loop. Real processes, a real Lease, each replica's own
/metrics.
"""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, ClusterHandle, OperatorProcess
from tests.integration.test_autoscaling import scaled_lmd
from tests.support import apply, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("own_operators_only")]


class ElectedOperator(OperatorProcess):
    """`lmscale run` as one candidate for the Lease `lease` in `namespace`."""

    def __init__(self, cluster: ClusterHandle, log_path: Path, *, lease: str,
                 namespace: str) -> None:
        super().__init__(cluster, log_path)
        self.lease, self.namespace = lease, namespace

    def start(self, *extra: str) -> None:
        assert self.process is None, "already running"
        env = {**self.env(), "LMSCALE_LEASE_NAMESPACE": self.namespace}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(REPO / ".venv" / "bin" / "lmscale"), "run", "-A", "--lease", self.lease,
                 *extra], env=env, stdout=log, stderr=subprocess.STDOUT)

    def model_series(self, namespace: str) -> list[str]:
        """The per-model samples this replica's /metrics shows for `namespace`."""
        try:
            url = f"http://127.0.0.1:{self.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=3) as response:
                text = response.read().decode()
        except OSError:
            return []  # (a standby may not serve /metrics at all)
        return [line for line in text.splitlines()
                if not line.startswith("#") and f'namespace="{namespace}"' in line]


@pytest.fixture
def pair(cluster: ClusterHandle, lmscale_crds: None, namespace: str, tmp_path: Path
         ) -> Iterator[tuple[ElectedOperator, ElectedOperator]]:
    lease = f"lmscale-{namespace[-5:]}"
    first = ElectedOperator(cluster, tmp_path / "first.log", lease=lease, namespace=namespace)
    second = ElectedOperator(cluster, tmp_path / "second.log", lease=lease, namespace=namespace)
    yield first, second
    first.stop()
    second.stop()


def _exports(operator: ElectedOperator, namespace: str) -> bool:
    return any(s.startswith("lmscale_desired_replicas") for s in operator.model_series(namespace))


def test_only_the_leader_exports_model_gauges(
    cluster: ClusterHandle, pair: tuple[ElectedOperator, ElectedOperator], namespace: str
) -> None:
    first, second = pair
    apply(cluster, namespace, scaled_lmd())
    first.start()
    wait_for(lambda: _exports(first, namespace), timeout=90,
             message=f"the leader scales and exports\n{first.log_tail()}")
    second.start()
    for _ in range(10):  # several scaler periods: the standby stays silent
        assert second.model_series(namespace) == [], second.log_tail()
        wait_for(lambda: _exports(first, namespace), timeout=5, message="leader still exports")
    first.stop()
    wait_for(lambda: _exports(second, namespace), timeout=60,
             message=f"the standby took the Lease and exports\n{second.log_tail()}")
