"""Fixtures the integration modules share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import ClusterHandle
from tests.integration.test_autoscaling import LiveSimulator


@pytest.fixture(scope="module")
def simulator(cluster: ClusterHandle, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[LiveSimulator]:
    if cluster.prometheus_targets is None:
        pytest.skip("the live simulator registers with the local cluster's Prometheus")
    sim = LiveSimulator(cluster, tmp_path_factory.mktemp("sim") / "sim.log")
    yield sim
    sim.stop()
