"""Prometheus configuration of the local cluster.

Scrape targets come from file service discovery: a part that exports metrics (the operator,
the live model-server simulator) writes `<job>.json` into the targets folder and Prometheus
picks it up within seconds, without a restart. Real model-server pods (on the real node) are
found through Kubernetes service discovery, with the relabelling of the chart's PodMonitor.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from lmscale.render import podmonitor

SCRAPE_INTERVAL_SECONDS = 2


def render_config(*, targets_dir: Path, self_port: int, kwok_port: int,
                  apiserver_url: str, pki: Path) -> str:
    config = {
        "global": {
            "scrape_interval": f"{SCRAPE_INTERVAL_SECONDS}s",
            "evaluation_interval": f"{SCRAPE_INTERVAL_SECONDS}s",
        },
        "scrape_configs": [
            {"job_name": "prometheus",
             "static_configs": [{"targets": [f"127.0.0.1:{self_port}"]}]},
            {"job_name": "kwok",
             "static_configs": [{"targets": [f"127.0.0.1:{kwok_port}"]}]},
            {
                # honor_labels: exporters here speak for many pods (as the DCGM exporter
                # does), so their namespace/pod labels must win over the target's.
                "job_name": "lmscale",
                "honor_labels": True,
                "file_sd_configs": [
                    {"files": [str(targets_dir / "*.json")], "refresh_interval": "2s"}
                ],
            },
            # Real model-server pods, found as kube-prometheus-stack finds them.
            _pod_monitor_job(apiserver_url, pki),
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


def _pod_monitor_job(apiserver_url: str, pki: Path) -> dict[str, object]:
    monitor = podmonitor.podmonitor("monitoring", interval=f"{SCRAPE_INTERVAL_SECONDS}s")
    return podmonitor.scrape_config(monitor, api_server=apiserver_url, tls_config={
        "ca_file": str(pki / "ca.crt"), "cert_file": str(pki / "admin.crt"),
        "key_file": str(pki / "admin.key")})


def register_target(targets_dir: Path, job: str, address: str,
                    labels: dict[str, str] | None = None) -> Path:
    """Add (or replace) a scrape target; returns the file to remove to unregister it."""
    targets_dir.mkdir(parents=True, exist_ok=True)
    path = targets_dir / f"{job}.json"
    entry = [{"targets": [address], "labels": {"source": job, **(labels or {})}}]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entry))
    tmp.replace(path)
    return path
