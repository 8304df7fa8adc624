"""Node pools, Prometheus configuration and binary lookup of the local cluster (no processes)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lmscale.devcluster import binaries, nodepools, prometheus
from lmscale.devcluster.layout import Layout, repo_root

HACK = repo_root() / "hack" / "localcluster"


def test_default_pools_are_gpu_nodes_as_feature_discovery_labels_them() -> None:
    shape = nodepools.load(HACK / "nodepools.yaml")
    nodes = nodepools.node_manifests(shape)
    assert len(nodes) == sum(p.count for p in shape.pools)
    h100 = next(n for n in nodes if n["metadata"]["name"] == "gpu-h100-0")
    assert h100["metadata"]["labels"]["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert h100["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
    assert h100["status"]["allocatable"]["nvidia.com/gpu"] == "8"
    assert h100["spec"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]


def test_prometheus_scrapes_file_discovered_targets(tmp_path: Path) -> None:
    config = yaml.safe_load(prometheus.render_config(
        targets_dir=tmp_path, self_port=1, kwok_port=2, apiserver_url="https://127.0.0.1:1",
        pki=tmp_path))
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert jobs["lmscale"]["honor_labels"] is True
    assert jobs["lmscale"]["file_sd_configs"][0]["files"] == [str(tmp_path / "*.json")]
    path = prometheus.register_target(tmp_path, "sim", "127.0.0.1:9400")
    assert yaml.safe_load(path.read_text())[0]["targets"] == ["127.0.0.1:9400"]


@pytest.mark.parametrize(("env", "expected"), [
    pytest.param({"TEST_ASSET_KUBE_APISERVER": "/opt/x/kube-apiserver"},
                 "/opt/x/kube-apiserver", id="test-asset-variable"),
    pytest.param({"KUBEBUILDER_ASSETS": "ASSETS"}, "ASSETS/kube-apiserver", id="kubebuilder"),
])
def test_envtest_conventions_come_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                        env: dict[str, str], expected: str) -> None:
    (tmp_path / "kube-apiserver").write_text("")
    for key, value in env.items():
        monkeypatch.setenv(key, value.replace("ASSETS", str(tmp_path)))
    found = binaries.find("kube-apiserver", hack=HACK, build=False)
    assert str(found) == expected.replace("ASSETS", str(tmp_path))


def test_versions_are_pinned_in_one_place() -> None:
    versions = binaries.read_versions(HACK)
    assert versions["KUBERNETES_VERSION"].startswith("v1.36.")
    assert versions["ETCD_VERSION"].startswith("v3.6.")
    assert versions["KWOK_VERSION"] == "v0.8.0"
    assert versions["HELM_VERSION"].startswith("v3.21.")


def test_each_port_offset_has_its_own_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LMSCALE_CLUSTER_DIR", raising=False)
    monkeypatch.delenv("LMSCALE_CLUSTER_PORT_OFFSET", raising=False)
    default = Layout.default()
    monkeypatch.setenv("LMSCALE_CLUSTER_PORT_OFFSET", "300")
    shifted = Layout.default()
    assert default.root.name == ".localcluster"
    assert shifted.root.name == ".localcluster-300"
    assert shifted.ports.apiserver == default.ports.apiserver + 300
    assert not shifted.real_node
