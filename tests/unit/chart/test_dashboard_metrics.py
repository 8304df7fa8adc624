"""The Grafana dashboard and the alert rules read operator series by name; those names are
documented in docs/install.md ("Monitoring") and must be ones the operator exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from lmscale import operator_metrics

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "lmscale"
SERIES = re.compile(r"\blmscale_[a-z0-9_]+")


def _used() -> set[str]:
    dashboard = json.loads((CHART / "dashboards" / "lmscale-models.json").read_text())
    exprs = json.dumps(dashboard)  # every expr, legend and variable query
    rules = (CHART / "templates" / "prometheusrule.yaml").read_text()
    return set(SERIES.findall(exprs)) | set(SERIES.findall(rules))


def _documented() -> set[str]:
    text = (REPO / "docs" / "install.md").read_text().split("## Monitoring", 1)[1]
    return set(re.findall(r"`(lmscale_[a-z0-9_]+)`", text))


def _exported() -> set[str]:
    registry = CollectorRegistry()
    operator_metrics.OperatorMetrics(registry=registry)
    return {metric.name for metric in registry.collect()}


def test_dashboard_and_rules_use_documented_series() -> None:
    assert _used() == _documented()


def test_operator_exports_every_series_the_dashboard_reads() -> None:
    missing = _used() - _exported()
    assert not missing, f"not exported by lmscale.operator_metrics: {sorted(missing)}"
