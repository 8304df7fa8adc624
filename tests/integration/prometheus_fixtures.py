"""A throwaway real Prometheus scraping an in-process fake exporter (no cluster needed).

The exporter plays vLLM, TGI, SGLang and DCGM for a set of fake pods: tests set series and
histograms on it, then poll Prometheus until a scrape (every second) has picked them up.

It serves the text format 0.0.4 whatever the scraper asks for: prometheus_client's
OpenMetrics output rewrites `:` in names to `_`, and Prometheus 2.42 asks for OpenMetrics
first, so `vllm:num_requests_waiting` would arrive as `vllm_num_requests_waiting`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import json
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import pytest
import yaml
from prometheus_client import CollectorRegistry, exposition
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from tests.conftest import free_port

T = TypeVar("T")
SCRAPE_INTERVAL_SECONDS = 1
LabelSet = tuple[tuple[str, str], ...]


def wait_for(probe: Callable[[], T | None], *, timeout: float = 15.0, every: float = 0.2) -> T:
    """Poll until `probe` returns something truthy; fail with the last result otherwise."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"not true within {timeout}s; last result: {last!r}")


@dataclasses.dataclass
class Histogram:
    """A histogram growing at `rate` observations per second with a fixed distribution.

    `cumulative` is the fraction of observations at or below each bound, so the rate of
    every bucket is proportional and histogram_quantile's answer is known exactly.
    """

    bounds: Sequence[float]
    cumulative: Sequence[float]
    rate: float = 50.0
    mean: float = 0.0  # of the observations: the sum grows at rate * mean per second
    started: float = dataclasses.field(default_factory=time.time)

    def total(self, now: float) -> float:
        return self.rate * (now - self.started + 100)  # non-zero at the first scrape

    def buckets(self, now: float) -> list[tuple[str, float]]:
        total = self.total(now)
        pairs = [
            (repr(float(b)), total * f) for b, f in zip(self.bounds, self.cumulative, strict=True)
        ]
        return [*pairs, ("+Inf", total)]


class FakeExporter(Collector):
    """Engine and DCGM series for fake pods, changed by tests while Prometheus scrapes them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gauges: dict[str, dict[LabelSet, tuple[float, float | None]]] = {}
        self._histograms: dict[str, dict[LabelSet, Histogram]] = {}
        self._counters: dict[str, dict[LabelSet, tuple[float, float]]] = {}
        self.registry = CollectorRegistry()
        self.registry.register(self)
        self._server: http.server.ThreadingHTTPServer | None = None
        self.port = 0

    def set(
        self, name: str, value: float, labels: Mapping[str, str], *, timestamp: float | None = None
    ) -> None:
        """Set a gauge; an explicit `timestamp` makes Prometheus store that sample time."""
        with self._lock:
            self._gauges.setdefault(name, {})[_key(labels)] = (value, timestamp)

    def remove(self, name: str, labels: Mapping[str, str]) -> None:
        with self._lock:
            self._gauges.get(name, {}).pop(_key(labels), None)

    def counter(self, name: str, rate: float, labels: Mapping[str, str]) -> None:
        """A counter (`name` without `_total`) growing by `rate` per second from now."""
        with self._lock:
            self._counters.setdefault(name, {})[_key(labels)] = (rate, time.time())

    def histogram(self, name: str, histogram: Histogram, labels: Mapping[str, str]) -> None:
        with self._lock:
            self._histograms.setdefault(name, {})[_key(labels)] = histogram

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        with self._lock:
            for name, series in self._gauges.items():
                names = _label_names(series)
                family = GaugeMetricFamily(name, name, labels=names)
                for key, (value, timestamp) in series.items():
                    family.add_metric(_values(key, names), value, timestamp=timestamp)
                yield family
            for name, hseries in self._histograms.items():
                hfamily = HistogramMetricFamily(name, name, labels=_label_names(hseries))
                for key, histogram in hseries.items():
                    hfamily.add_metric(
                        [v for _, v in key],
                        histogram.buckets(now),
                        sum_value=histogram.total(now) * histogram.mean,
                    )
                yield hfamily
            for name, cseries in self._counters.items():
                cfamily = CounterMetricFamily(name, name, labels=_label_names(cseries))
                for key, (rate, started) in cseries.items():
                    cfamily.add_metric([v for _, v in key], rate * (now - started + 100))
                yield cfamily

    def serve(self) -> int:
        registry = self.registry

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                body = exposition.generate_latest(registry)
                self.send_response(200)
                self.send_header("Content-Type", exposition.CONTENT_TYPE_PLAIN_0_0_4)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(ConnectionError):  # Prometheus stopped mid-scrape
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.port = int(self._server.server_address[1])
        return self.port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _key(labels: Mapping[str, str]) -> LabelSet:
    return tuple(sorted(labels.items()))


def _label_names(series: Mapping[LabelSet, object]) -> list[str]:
    """Every label name of a metric's series (one family has one list of names)."""
    return sorted({name for key in series for name, _ in key})


def _values(key: LabelSet, names: list[str]) -> list[str]:
    """A series' label values in the family's order; "" (absent to Prometheus) for the
    names only other series carry."""
    labels = dict(key)
    return [labels.get(name, "") for name in names]


@dataclasses.dataclass
class PrometheusServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def query(self, promql: str) -> list[dict[str, object]]:
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=5) as response:
            result: list[dict[str, object]] = json.load(response)["data"]["result"]
            return result


def prometheus_binary() -> str:
    from lmscale.devcluster import binaries

    return str(binaries.prometheus(Path(__file__).resolve().parents[2] / "hack" / "localcluster"))


def start_prometheus(data: Path, exporter_port: int) -> PrometheusServer:
    data.mkdir(parents=True, exist_ok=True)
    config = data / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {
                    "scrape_interval": f"{SCRAPE_INTERVAL_SECONDS}s",
                    "scrape_timeout": f"{SCRAPE_INTERVAL_SECONDS}s",
                },
                "scrape_configs": [
                    {
                        "job_name": "fake-engines",
                        "honor_labels": True,  # the exporter speaks for many pods
                        "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}],
                    }
                ],
            }
        )
    )
    port = free_port()
    log = data / "prometheus.log"
    process = subprocess.Popen(
        [
            prometheus_binary(),
            f"--config.file={config}",
            f"--storage.tsdb.path={data / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    server = PrometheusServer(f"http://127.0.0.1:{port}", process, log)
    try:
        wait_for(lambda: _ready(server), timeout=30)
    except AssertionError:
        stop_prometheus(server)
        raise AssertionError(f"Prometheus did not start: {log.read_text()[-2000:]}") from None
    return server


def stop_prometheus(server: PrometheusServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def _ready(server: PrometheusServer) -> bool:
    if server.process.poll() is not None:
        raise AssertionError(f"Prometheus exited: {server.log.read_text()[-2000:]}")
    try:
        with urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="session")
def exporter() -> Iterator[FakeExporter]:
    fake = FakeExporter()
    fake.serve()
    yield fake
    fake.close()


@pytest.fixture(scope="session")
def prometheus(
    exporter: FakeExporter, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    server = start_prometheus(tmp_path_factory.mktemp("prometheus"), exporter.port)
    try:
        # The first scrape lands within an interval or two of start-up.
        wait_for(lambda: server.query('up{job="fake-engines"} == 1'), timeout=30)
        yield server
    finally:
        stop_prometheus(server)
