"""Operator settings, read once at start-up from environment variables the Helm chart sets.

The table of variables lives in docs/architecture.md ("Operator settings"); this module is
its only reader. Settings are nested frozen dataclasses so the parts that need them (the
Prometheus client, the metric queries, the scaler loop, the HTTP servers) take just their
own slice. A bad value fails start-up with a `SettingsError` that names the variable,
rather than surfacing later as a confusing query or connection error.
"""

from __future__ import annotations

import dataclasses
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# RFC 1123 label: what Kubernetes accepts as a namespace name.
_NAMESPACE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
STANDALONE = "standalone"


class SettingsError(ValueError):
    """A variable holds a value the operator cannot run with; the message names it."""

    def __init__(self, variable: str, value: str, problem: str) -> None:
        super().__init__(f"{variable}={value!r}: {problem}")
        self.variable = variable
        self.value = value


@dataclasses.dataclass(frozen=True)
class PrometheusSettings:
    """Where and how to reach Prometheus; secrets stay out of repr()."""

    url: str = "http://127.0.0.1:9090"
    bearer_token_file: Path | None = None
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    ca_file: Path | None = None
    timeout_seconds: float = 5.0


@dataclasses.dataclass(frozen=True)
class MetricsSettings:
    """How series are labelled in Prometheus, and how old a sample may be before it is missing."""

    max_age_seconds: float = 60.0
    namespace_label: str = "namespace"
    pod_label: str = "pod"
    deployment_label: str = "lmscale_dev_deployment"
    # The model pod's namespace and name on DCGM series, when they differ from the above:
    # NVIDIA's GPU Operator ServiceMonitor (honorLabels off) renames the exporter's
    # `namespace` and `pod` to `exported_namespace` and `exported_pod`. None: the same.
    dcgm_namespace_label: str | None = None
    dcgm_pod_label: str | None = None


@dataclasses.dataclass(frozen=True)
class ScalerSettings:
    """The scaling loop: one cycle evaluates every resource."""

    period_seconds: float = 10.0


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    """Ports of the operator's own HTTP endpoints."""

    metrics_port: int = 8080
    health_port: int = 8081


@dataclasses.dataclass(frozen=True)
class LoggingSettings:
    level: str = "INFO"
    format: str = "text"


@dataclasses.dataclass(frozen=True)
class KopfSettings:
    """What kopf watches and how replicas of the operator coordinate."""

    watch_namespaces: tuple[str, ...] = ()  # empty: the whole cluster
    # The coordination.k8s.io Lease the replicas elect a leader on, and its namespace.
    lease: str = "lmscale"
    lease_namespace: str = "default"

    @property
    def standalone(self) -> bool:
        """`standalone` turns leader election off (one operator replica, no Lease)."""
        return self.lease == STANDALONE

    @property
    def cluster_wide(self) -> bool:
        return not self.watch_namespaces


@dataclasses.dataclass(frozen=True)
class OperatorSettings:
    prometheus: PrometheusSettings = PrometheusSettings()
    metrics: MetricsSettings = MetricsSettings()
    scaler: ScalerSettings = ScalerSettings()
    server: ServerSettings = ServerSettings()
    logging: LoggingSettings = LoggingSettings()
    kopf: KopfSettings = KopfSettings()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OperatorSettings:
        """Read every `LMSCALE_*` variable; unset or empty means the documented default."""
        env = _Env(os.environ if environ is None else environ)
        return cls(
            prometheus=_prometheus(env),
            metrics=MetricsSettings(
                max_age_seconds=env.get("LMSCALE_METRICS_MAX_AGE_SECONDS", 60.0, _positive),
                namespace_label=env.get("LMSCALE_NAMESPACE_LABEL", "namespace", _label),
                pod_label=env.get("LMSCALE_POD_LABEL", "pod", _label),
                deployment_label=env.get(
                    "LMSCALE_DEPLOYMENT_LABEL", "lmscale_dev_deployment", _label
                ),
                dcgm_namespace_label=env.get("LMSCALE_DCGM_NAMESPACE_LABEL", None, _label),
                dcgm_pod_label=env.get("LMSCALE_DCGM_POD_LABEL", None, _label),
            ),
            scaler=ScalerSettings(
                period_seconds=env.get("LMSCALE_SCALER_PERIOD_SECONDS", 10.0, _positive),
            ),
            server=_server(env),
            logging=LoggingSettings(
                level=env.get("LMSCALE_LOG_LEVEL", "INFO", _log_level),
                format=env.get("LMSCALE_LOG_FORMAT", "text", _log_format),
            ),
            kopf=KopfSettings(
                watch_namespaces=env.get("LMSCALE_WATCH_NAMESPACES", (), _namespaces),
                lease=env.get("LMSCALE_LEASE", "lmscale", _object_name),
                lease_namespace=env.get("LMSCALE_LEASE_NAMESPACE",
                                        env.get("POD_NAMESPACE", "default", _namespace),
                                        _namespace),
            ),
        )


class _Env:
    """Typed access to the environment; every conversion error names its variable."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def get(self, name: str, default: T, parse: Callable[[str], T]) -> T:
        raw = self._environ.get(name, "").strip()
        if not raw:
            return default
        try:
            return parse(raw)
        except ValueError as error:
            raise SettingsError(name, raw, str(error)) from None


def _prometheus(env: _Env) -> PrometheusSettings:
    username = env.get("LMSCALE_PROMETHEUS_USERNAME", None, _optional_str)
    password = env.get("LMSCALE_PROMETHEUS_PASSWORD", None, _optional_str)
    # Half of a basic-auth pair is a deployment mistake, not a request to skip auth.
    if (username is None) != (password is None):
        missing = (
            "LMSCALE_PROMETHEUS_PASSWORD" if password is None else "LMSCALE_PROMETHEUS_USERNAME"
        )
        raise SettingsError(missing, "", "basic auth needs both username and password")
    token_file = env.get("LMSCALE_PROMETHEUS_BEARER_TOKEN_FILE", None, _readable_file)
    if token_file is not None and username is not None:
        raise SettingsError(
            "LMSCALE_PROMETHEUS_BEARER_TOKEN_FILE",
            str(token_file),
            "set either a bearer token or basic auth (LMSCALE_PROMETHEUS_USERNAME), not both",
        )
    return PrometheusSettings(
        url=env.get("LMSCALE_PROMETHEUS_URL", "http://127.0.0.1:9090", _http_url),
        bearer_token_file=token_file,
        username=username,
        password=password,
        ca_file=env.get("LMSCALE_PROMETHEUS_CA_FILE", None, _readable_file),
        timeout_seconds=env.get("LMSCALE_PROMETHEUS_TIMEOUT_SECONDS", 5.0, _positive),
    )


def _server(env: _Env) -> ServerSettings:
    metrics_port = env.get("LMSCALE_METRICS_PORT", 8080, _port)
    health_port = env.get("LMSCALE_HEALTH_PORT", 8081, _port)
    if metrics_port == health_port:
        raise SettingsError(
            "LMSCALE_HEALTH_PORT", str(health_port), "must differ from LMSCALE_METRICS_PORT"
        )
    return ServerSettings(metrics_port=metrics_port, health_port=health_port)


def _optional_str(raw: str) -> str | None:
    return raw


def _positive(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("expected a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise ValueError("expected a positive, finite number of seconds")
    return value


def _port(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError("expected a port number") from None
    if not 1 <= value <= 65535:
        raise ValueError("expected a port number between 1 and 65535")
    return value


def _http_url(raw: str) -> str:
    parsed = urllib.parse.urlsplit(raw)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("expected an http:// or https:// URL with a host")
    return raw.rstrip("/")


def _readable_file(raw: str) -> Path:
    path = Path(raw)
    if not path.is_file():
        raise ValueError("no such file")
    return path


def _label(raw: str) -> str:
    if not _LABEL_NAME.match(raw):
        raise ValueError("not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)")
    return raw


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
    return level


def _log_format(raw: str) -> str:
    fmt = raw.lower()
    if fmt not in LOG_FORMATS:
        raise ValueError(f"expected one of {', '.join(LOG_FORMATS)}")
    return fmt


def _namespaces(raw: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    bad = [name for name in names if not _NAMESPACE_NAME.match(name)]
    if bad:
        raise ValueError(f"not a namespace name: {', '.join(bad)}")
    return names


def _namespace(raw: str) -> str:
    if not _NAMESPACE_NAME.match(raw):
        raise ValueError("not a namespace name (RFC 1123 label)")
    return raw


def _object_name(raw: str) -> str:
    # The Lease is a Kubernetes object name (RFC 1123 subdomain).
    if not re.match(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", raw):
        raise ValueError("expected a Kubernetes object name, or 'standalone'")
    return raw


def endpoint_picker_image(environ: Mapping[str, str] | None = None) -> str | None:
    """LMSCALE_ENDPOINT_PICKER_IMAGE (the chart's routing.endpointPickerImage), None if unset.

    Read where the children are rendered, as routing.mode inferencePool needs it.
    """
    raw = (os.environ if environ is None else environ).get("LMSCALE_ENDPOINT_PICKER_IMAGE", "")
    return raw.strip() or None


def activator_service(environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """LMSCALE_ACTIVATOR_SERVICE, `namespace/name` of the activator's Service, None if unset.

    Set by the chart with activator.enabled. Without it no model is put behind the activator:
    every Service selects its pods, as before there was one.
    """
    raw = (os.environ if environ is None else environ).get("LMSCALE_ACTIVATOR_SERVICE", "")
    raw = raw.strip()
    if not raw:
        return None
    namespace, sep, name = raw.partition("/")
    if not sep or not _NAMESPACE_NAME.match(namespace) or not _NAMESPACE_NAME.match(name):
        raise SettingsError("LMSCALE_ACTIVATOR_SERVICE", raw,
                            "expected NAMESPACE/NAME of the activator's Service")
    return namespace, name
