"""The chart ships the generated CRDs byte for byte: `helm install` and `kubectl apply -f crds/`
must create the same schema. Fix a failure with hack/sync_chart_crds.sh."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
GENERATED = REPO / "crds"
CHART_CRDS = REPO / "charts" / "lmscale" / "crds"
# CRDs that belong to the chart only: none (leader election uses the built-in Lease).
CHART_ONLY: set[str] = set()


def _generated() -> list[Path]:
    return sorted(GENERATED.glob("*.yaml"))


def test_generated_crds_exist() -> None:
    names = [path.name for path in _generated()]
    assert "lmscale.dev_languagemodeldeployments.yaml" in names, (
        "crds/lmscale.dev_languagemodeldeployments.yaml is missing: run `lmscale crd`"
    )


@pytest.mark.parametrize("source", _generated(), ids=lambda path: path.name)
def test_chart_copy_is_identical(source: Path) -> None:
    copy = CHART_CRDS / source.name
    assert copy.is_file(), (
        f"charts/lmscale/crds/{source.name} is missing: run hack/sync_chart_crds.sh"
    )
    assert copy.read_bytes() == source.read_bytes(), (
        f"charts/lmscale/crds/{source.name} differs from crds/{source.name}: "
        "run hack/sync_chart_crds.sh"
    )


def test_chart_has_no_stale_crds() -> None:
    # A CRD removed from crds/ must not linger in the chart.
    expected = {path.name for path in _generated()} | CHART_ONLY
    present = {path.name for path in CHART_CRDS.glob("*.yaml")}
    assert present <= expected, f"stale CRDs in the chart: {sorted(present - expected)}"


def test_chart_ships_only_lmscales_own_crds() -> None:
    # Leader election is on a coordination.k8s.io Lease: no kopf peering CRDs any more.
    docs = [d for path in CHART_CRDS.glob("*.yaml") for d in yaml.safe_load_all(path.read_text())
            if d]
    assert {d["spec"]["group"] for d in docs} == {"lmscale.dev"}
