"""Prometheus configuration of the local cluster.

Scrape targets come from file service discovery: a part that exports metrics (the operator,
the live model-server simulator) writes `<job>.json` into the targets folder and Prometheus
picks it up within seconds, without a restart.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

SCRAPE_INTERVAL_SECONDS = 2


def render_config(*, targets_dir: Path, self_port: int, kwok_port: int) -> str:
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
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


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
