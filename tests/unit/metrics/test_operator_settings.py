"""OperatorSettings.from_env: the documented defaults, each variable, and errors that name it."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from lmscale.settings import OperatorSettings, SettingsError

ARCHITECTURE = Path(__file__).resolve().parents[3] / "docs" / "architecture.md"


def test_defaults() -> None:
    settings = OperatorSettings.from_env({})

    assert settings == OperatorSettings()
    assert settings.prometheus.url == "http://127.0.0.1:9090"
    assert settings.prometheus.timeout_seconds == 5
    assert settings.metrics.max_age_seconds == 60
    assert (
        settings.metrics.namespace_label,
        settings.metrics.pod_label,
        settings.metrics.deployment_label,
    ) == ("namespace", "pod", "lmscale_dev_deployment")
    assert settings.scaler.period_seconds == 10
    assert (settings.server.metrics_port, settings.server.health_port) == (8080, 8081)
    assert (settings.logging.level, settings.logging.format) == ("INFO", "text")
    assert settings.kopf.watch_namespaces == ()
    assert settings.kopf.cluster_wide
    assert (settings.kopf.lease, settings.kopf.standalone) == ("lmscale", False)


def test_reads_exactly_the_documented_variables() -> None:
    documented = set(re.findall(r"`(LMSCALE_[A-Z_]+)`", _settings_table()))
    source = (
        Path(__file__).resolve().parents[3] / "operator" / "lmscale" / "settings.py"
    ).read_text()
    read = set(re.findall(r'"(LMSCALE_[A-Z_]+)"', source))

    assert read == documented


def _settings_table() -> str:
    text = ARCHITECTURE.read_text()
    start = text.index("## Operator settings")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


@pytest.mark.parametrize(
    ("env", "path", "expected"),
    [
        pytest.param(
            {"LMSCALE_PROMETHEUS_URL": "https://prom.monitoring:9090/"},
            "prometheus.url",
            "https://prom.monitoring:9090",
            id="url-trailing-slash",
        ),
        pytest.param(
            {"LMSCALE_PROMETHEUS_TIMEOUT_SECONDS": "2.5"},
            "prometheus.timeout_seconds",
            2.5,
            id="timeout",
        ),
        pytest.param(
            {"LMSCALE_PROMETHEUS_USERNAME": "ops", "LMSCALE_PROMETHEUS_PASSWORD": "pw"},
            "prometheus.username",
            "ops",
            id="basic-auth",
        ),
        pytest.param(
            {"LMSCALE_METRICS_MAX_AGE_SECONDS": "30"},
            "metrics.max_age_seconds",
            30.0,
            id="max-age",
        ),
        pytest.param(
            {"LMSCALE_NAMESPACE_LABEL": "kubernetes_namespace"},
            "metrics.namespace_label",
            "kubernetes_namespace",
            id="namespace-label",
        ),
        pytest.param(
            {"LMSCALE_POD_LABEL": "pod_name"}, "metrics.pod_label", "pod_name", id="pod-label"
        ),
        pytest.param(
            {"LMSCALE_DEPLOYMENT_LABEL": "label_lmscale_dev_deployment"},
            "metrics.deployment_label",
            "label_lmscale_dev_deployment",
            id="deployment-label",
        ),
        pytest.param(
            {"LMSCALE_DCGM_NAMESPACE_LABEL": "exported_namespace"},
            "metrics.dcgm_namespace_label",
            "exported_namespace",
            id="dcgm-namespace-label",
        ),
        pytest.param(
            {"LMSCALE_DCGM_POD_LABEL": "exported_pod"}, "metrics.dcgm_pod_label",
            "exported_pod", id="dcgm-pod-label",
        ),
        pytest.param(
            {"LMSCALE_SCALER_PERIOD_SECONDS": "15"},
            "scaler.period_seconds",
            15.0,
            id="period",
        ),
        pytest.param(
            {"LMSCALE_METRICS_PORT": "9100"}, "server.metrics_port", 9100, id="metrics-port"
        ),
        pytest.param({"LMSCALE_HEALTH_PORT": "9101"}, "server.health_port", 9101, id="health-port"),
        pytest.param({"LMSCALE_LOG_LEVEL": "debug"}, "logging.level", "DEBUG", id="log-level"),
        pytest.param({"LMSCALE_LOG_FORMAT": "JSON"}, "logging.format", "json", id="log-format"),
        pytest.param(
            {"LMSCALE_WATCH_NAMESPACES": "team-a, team-b,,team-a"},
            "kopf.watch_namespaces",
            ("team-a", "team-b"),
            id="watch-namespaces",
        ),
        pytest.param({"LMSCALE_LEASE": "standalone"}, "kopf.standalone", True, id="standalone"),
        pytest.param(
            {"LMSCALE_LEASE": "lmscale-prod"}, "kopf.lease", "lmscale-prod", id="lease"
        ),
        pytest.param({"POD_NAMESPACE": "ops"}, "kopf.lease_namespace", "ops",
                     id="lease-in-the-pods-namespace"),
        pytest.param({"POD_NAMESPACE": "ops", "LMSCALE_LEASE_NAMESPACE": "leases"},
                     "kopf.lease_namespace", "leases", id="lease-namespace"),
        pytest.param(
            {"LMSCALE_METRICS_PORT": "  "}, "server.metrics_port", 8080, id="blank-is-default"
        ),
    ],
)
def test_variables(env: dict[str, str], path: str, expected: Any) -> None:
    value: Any = OperatorSettings.from_env(env)
    for part in path.split("."):
        value = getattr(value, part)

    assert value == expected


def test_files_are_checked(tmp_path: Path) -> None:
    token, ca = tmp_path / "token", tmp_path / "ca.pem"
    token.write_text("t")
    ca.write_text("c")

    settings = OperatorSettings.from_env(
        {"LMSCALE_PROMETHEUS_BEARER_TOKEN_FILE": str(token), "LMSCALE_PROMETHEUS_CA_FILE": str(ca)}
    )

    assert (settings.prometheus.bearer_token_file, settings.prometheus.ca_file) == (token, ca)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        pytest.param(
            {"LMSCALE_PROMETHEUS_URL": "prometheus:9090"}, "LMSCALE_PROMETHEUS_URL", id="url-scheme"
        ),
        pytest.param({"LMSCALE_PROMETHEUS_URL": "ftp://x"}, "LMSCALE_PROMETHEUS_URL", id="url-ftp"),
        pytest.param(
            {"LMSCALE_PROMETHEUS_TIMEOUT_SECONDS": "five"},
            "LMSCALE_PROMETHEUS_TIMEOUT_SECONDS",
            id="timeout-word",
        ),
        pytest.param(
            {"LMSCALE_PROMETHEUS_TIMEOUT_SECONDS": "0"},
            "LMSCALE_PROMETHEUS_TIMEOUT_SECONDS",
            id="timeout-zero",
        ),
        pytest.param(
            {"LMSCALE_METRICS_MAX_AGE_SECONDS": "-1"},
            "LMSCALE_METRICS_MAX_AGE_SECONDS",
            id="max-age-negative",
        ),
        pytest.param(
            {"LMSCALE_METRICS_MAX_AGE_SECONDS": "nan"},
            "LMSCALE_METRICS_MAX_AGE_SECONDS",
            id="max-age-nan",
        ),
        pytest.param(
            {"LMSCALE_SCALER_PERIOD_SECONDS": "inf"},
            "LMSCALE_SCALER_PERIOD_SECONDS",
            id="period-inf",
        ),
        pytest.param({"LMSCALE_METRICS_PORT": "80.5"}, "LMSCALE_METRICS_PORT", id="port-float"),
        pytest.param({"LMSCALE_HEALTH_PORT": "70000"}, "LMSCALE_HEALTH_PORT", id="port-range"),
        pytest.param({"LMSCALE_HEALTH_PORT": "8080"}, "LMSCALE_HEALTH_PORT", id="ports-clash"),
        pytest.param(
            {"LMSCALE_DEPLOYMENT_LABEL": "lmscale.dev/deployment"},
            "LMSCALE_DEPLOYMENT_LABEL",
            id="kubernetes-label-not-prometheus-label",
        ),
        pytest.param({"LMSCALE_POD_LABEL": "1pod"}, "LMSCALE_POD_LABEL", id="label-digit"),
        pytest.param({"LMSCALE_LOG_LEVEL": "verbose"}, "LMSCALE_LOG_LEVEL", id="log-level"),
        pytest.param({"LMSCALE_LOG_FORMAT": "yaml"}, "LMSCALE_LOG_FORMAT", id="log-format"),
        pytest.param(
            {"LMSCALE_WATCH_NAMESPACES": "team-a,Team_B"},
            "LMSCALE_WATCH_NAMESPACES",
            id="namespace-name",
        ),
        pytest.param({"LMSCALE_LEASE": "Not Valid"}, "LMSCALE_LEASE", id="lease-name"),
        pytest.param(
            {"LMSCALE_PROMETHEUS_USERNAME": "ops"},
            "LMSCALE_PROMETHEUS_PASSWORD",
            id="username-without-password",
        ),
        pytest.param(
            {"LMSCALE_PROMETHEUS_PASSWORD": "pw"},
            "LMSCALE_PROMETHEUS_USERNAME",
            id="password-without-username",
        ),
        pytest.param(
            {"LMSCALE_PROMETHEUS_BEARER_TOKEN_FILE": "/nonexistent/token"},
            "LMSCALE_PROMETHEUS_BEARER_TOKEN_FILE",
            id="token-file-missing",
        ),
        pytest.param(
            {"LMSCALE_PROMETHEUS_CA_FILE": "/nonexistent/ca.pem"},
            "LMSCALE_PROMETHEUS_CA_FILE",
            id="ca-file-missing",
        ),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as raised:
        OperatorSettings.from_env(env)

    assert raised.value.variable == variable
    assert str(raised.value).startswith(f"{variable}=")


def test_token_and_basic_auth_together_is_an_error(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    env = {
        "LMSCALE_PROMETHEUS_BEARER_TOKEN_FILE": str(token),
        "LMSCALE_PROMETHEUS_USERNAME": "ops",
        "LMSCALE_PROMETHEUS_PASSWORD": "pw",
    }

    with pytest.raises(SettingsError, match="not both"):
        OperatorSettings.from_env(env)


def test_settings_are_frozen_and_hide_the_password() -> None:
    settings = OperatorSettings.from_env(
        {"LMSCALE_PROMETHEUS_USERNAME": "ops", "LMSCALE_PROMETHEUS_PASSWORD": "s3cret"}
    )

    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.prometheus.url = "http://elsewhere"  # type: ignore[misc]
    assert "s3cret" not in repr(settings)


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMSCALE_SCALER_PERIOD_SECONDS", "3")

    assert OperatorSettings.from_env().scaler.period_seconds == 3
