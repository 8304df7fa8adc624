"""Every rule of the chart's PrometheusRule, run by `promtool test rules` on series as two
operator replicas and the engines' pods export them.

promtool is built with the local cluster's Prometheus (`make binaries`), or taken from PATH. The
rules are the rendered chart's, unchanged; the inputs are written here in promtool's
expanding notation (`a+bxN`: start at a, add b each interval, N times).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.unit.chart.test_chart_render import HELM, one, render

from lmscale.devcluster import binaries

HACK = Path(__file__).resolve().parents[3] / "hack" / "localcluster"
PROMTOOL = binaries.from_cache("promtool", hack=HACK) or shutil.which("promtool")
pytestmark = [
    pytest.mark.skipif(HELM is None, reason="helm not found"),
    pytest.mark.skipif(PROMTOOL is None, reason="promtool not found: make binaries"),
]

MODEL = 'namespace="team-a", name="chat"'
CALM = 'namespace="team-a", name="calm"'


def _operator(series: str, labels: str, pod: str, values: str) -> dict[str, str]:
    """One operator gauge as the ServiceMonitor scrapes it (honorLabels keeps namespace)."""
    return {"series": f'{series}{{{labels}, pod="{pod}", job="lmscale"}}', "values": values}


def _engine(name: str, deployment: str, pod: str, values: str, le: str | None = None,
            err: str | None = None) -> dict[str, str]:
    """One engine series as the PodMonitor scrapes it (the pod's deployment label kept)."""
    extra = (f', le="{le}"' if le else "") + (f', err="{err}"' if err else "")
    return {"series": f'{name}{{namespace="team-a", pod="{pod}", '
                      f'lmscale_dev_deployment="{deployment}"{extra}}}', "values": values}


def _alert(name: str, at: str, *labels: dict[str, str]) -> dict[str, Any]:
    return {"eval_time": at, "alertname": name,
            "exp_alerts": [{"exp_labels": dict(label)} for label in labels]}


def _labels(model: str, severity: str) -> dict[str, str]:
    return {"namespace": "team-a", "name": model, "severity": severity}


VLLM = "vllm:time_to_first_token_seconds"
SGLANG = "sglang:time_to_first_token_seconds"

# chat (vLLM, objective 0.5 s): 100 requests a minute per pod, 10 of them within 0.5 s,
# so 90% are slow against an allowed 5%: burn rate 18. calm (SGLang, objective 0.4 s):
# 98 of 100 within it, burn rate 0.4. Both operator replicas publish the bucket.
BURN_SERIES = [
    *(_engine(f"{VLLM}_count", "chat", pod, "0+100x400") for pod in ("chat-1", "chat-2")),
    *(_engine(f"{VLLM}_bucket", "chat", pod, "0+10x400", le="0.5")
      for pod in ("chat-1", "chat-2")),
    _engine(f"{VLLM}_bucket", "chat", "chat-1", "0+5x400", le="0.25"),
    _engine(f"{SGLANG}_count", "calm", "calm-1", "0+100x400"),
    _engine(f"{SGLANG}_bucket", "calm", "calm-1", "0+98x400", le="0.4"),
    *(_operator("lmscale_slo_ttft_bucket_info", f'{MODEL}, le="0.5"', pod, "1x400")
      for pod in ("lmscale-a", "lmscale-b")),
    *(_operator("lmscale_slo_ttft_bucket_info", f'{CALM}, le="0.4"', pod, "1x400")
      for pod in ("lmscale-a", "lmscale-b")),
]

# Two operator replicas export the same model during a hand-over: the paused one's frozen
# copy (lmscale-b) until it clears its gauges when its scaling loop stops (then stale).
SCALING_SERIES = [
    _operator("lmscale_desired_replicas", MODEL, "lmscale-a", "8x40"),
    _operator("lmscale_desired_replicas", MODEL, "lmscale-b", "3x5 stale"),
    _operator("lmscale_max_replicas", MODEL, "lmscale-a", "8x40"),
    _operator("lmscale_max_replicas", MODEL, "lmscale-b", "8x5 stale"),
    _operator("lmscale_metrics_available", MODEL, "lmscale-a", "0x40"),
    _operator("lmscale_metrics_available", MODEL, "lmscale-b", "1x5 stale"),
    _operator("lmscale_observed_ttft_p95_seconds", MODEL, "lmscale-a", "0.9x40"),
    _operator("lmscale_observed_ttft_p95_seconds", MODEL, "lmscale-b", "0.2x5 stale"),
    _operator("lmscale_slo_ttft_p95_seconds", MODEL, "lmscale-a", "0.5x40"),
    _operator("lmscale_slo_ttft_p95_seconds", MODEL, "lmscale-b", "0.5x5 stale"),
]


def _rules(*, annotations: bool = True) -> dict[str, Any]:
    rule = one(render("prometheusRule.enabled=true"), "PrometheusRule")
    groups = rule["spec"]["groups"]
    if not annotations:
        # promtool compares annotations exactly; only the test that checks them keeps them.
        groups = [{**g, "rules": [{k: v for k, v in r.items() if k != "annotations"}
                                  for r in g["rules"]]} for g in groups]
    return {"groups": groups}


def _promtool(tmp_path: Path, tests: list[dict[str, Any]], *, annotations: bool = False
              ) -> subprocess.CompletedProcess[str]:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(_rules(annotations=annotations)))
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(
        {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}))
    assert PROMTOOL is not None
    checked = subprocess.run([PROMTOOL, "check", "rules", str(tmp_path / "rules.yaml")],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return subprocess.run([PROMTOOL, "test", "rules", "test.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


def test_every_alert_has_a_runbook() -> None:
    alerts = [r for g in _rules()["groups"] for r in g["rules"] if "alert" in r]
    assert {a["alert"] for a in alerts} == {
        "LmscaleTTFTErrorBudgetBurnFast", "LmscaleTTFTErrorBudgetBurnSlow",
        "LmscaleTTFTP95AboveSLO", "LmscaleTGIShedsLoad", "LmscaleMetricsUnavailable",
        "LmscaleReplicasPinnedAtMax"}
    runbooks = (Path(__file__).resolve().parents[3] / "docs" / "runbooks.md").read_text()
    for alert in alerts:
        url = alert["annotations"]["runbook_url"]
        assert url.endswith("docs/runbooks.md#" + alert["alert"].lower())
        assert f"## {alert['alert']}\n" in runbooks


def test_scaling_alerts_with_two_operator_replicas(tmp_path: Path) -> None:
    tests = [{
        "interval": "1m",
        "input_series": SCALING_SERIES,
        "alert_rule_test": [
            # Pinned at max from the active replica, despite the paused one's frozen 3.
            _alert("LmscaleReplicasPinnedAtMax", "10m"),
            _alert("LmscaleReplicasPinnedAtMax", "25m", _labels("chat", "warning")),
            # The paused replica's frozen 1 goes stale, then the active one's 0 counts.
            _alert("LmscaleMetricsUnavailable", "4m"),
            _alert("LmscaleMetricsUnavailable", "15m", _labels("chat", "warning")),
            _alert("LmscaleTTFTP95AboveSLO", "25m", _labels("chat", "warning")),
        ],
    }]
    done = _promtool(tmp_path, tests)
    assert done.returncode == 0, done.stdout + done.stderr


def test_tgi_load_shedding(tmp_path: Path) -> None:
    failures = "tgi_request_failure"
    tests = [{
        "interval": "1m",
        "input_series": [
            _engine(failures, "tgi", "tgi-1", "0+30x30", err="overloaded"),
            _engine(failures, "tgi", "tgi-1", "0+30x30", err="validation"),
            _engine(failures, "fine", "fine-1", "0x30", err="overloaded"),
        ],
        "alert_rule_test": [
            _alert("LmscaleTGIShedsLoad", "3m"),
            _alert("LmscaleTGIShedsLoad", "10m", _labels("tgi", "warning")),
        ],
    }]
    done = _promtool(tmp_path, tests)
    assert done.returncode == 0, done.stdout + done.stderr


def test_error_budget_burn_rates(tmp_path: Path) -> None:
    tests = [{
        "interval": "1m",
        "input_series": BURN_SERIES,
        "promql_expr_test": [
            {"expr": f"round(lmscale:ttft_error_budget_burn:rate{w}, 0.001)", "eval_time": "30m",
             "exp_samples": [{"labels": f"{{{MODEL}}}", "value": 18},
                             {"labels": f"{{{CALM}}}", "value": 0.4}]}
            for w in ("5m", "30m", "1h")
        ],
        "alert_rule_test": [
            _alert("LmscaleTTFTErrorBudgetBurnFast", "1m"),
            _alert("LmscaleTTFTErrorBudgetBurnFast", "10m", _labels("chat", "critical")),
            _alert("LmscaleTTFTErrorBudgetBurnSlow", "10m"),
            _alert("LmscaleTTFTErrorBudgetBurnSlow", "30m", _labels("chat", "warning")),
        ],
    }]
    done = _promtool(tmp_path, tests)
    assert done.returncode == 0, done.stdout + done.stderr


def test_alert_annotations_expand(tmp_path: Path) -> None:
    """The annotation templates as Alertmanager receives them, with the runbook link."""
    tests = [{
        "interval": "1m",
        "input_series": BURN_SERIES,
        "alert_rule_test": [{
            "eval_time": "10m", "alertname": "LmscaleTTFTErrorBudgetBurnFast",
            "exp_alerts": [{
                "exp_labels": _labels("chat", "critical"),
                "exp_annotations": {
                    "summary": "team-a/chat: TTFT error budget burning 14.4x too fast",
                    "description": (
                        "Over the last 1h and 5m, more than 14.4 times the allowed share of "
                        "requests to team-a/chat waited longer than spec.slo.ttftP95Ms for "
                        "their first token (burn rate 18.0). Check whether replicas are "
                        "pinned at spec.scaling.maxReplicas, pending on GPU capacity, or "
                        "still loading the model."),
                    "runbook_url": "https://github.com/lmscale/lmscale/blob/main/docs/"
                                   "runbooks.md#lmscalettfterrorbudgetburnfast",
                },
            }],
        }],
    }]
    done = _promtool(tmp_path, tests, annotations=True)
    assert done.returncode == 0, done.stdout + done.stderr
