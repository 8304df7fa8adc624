"""`lmscale simulate` end to end on a small trace written to tmp_path."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from lmscale.cli import main

KEYS = {
    "requests",
    "completed",
    "slo_attainment",
    "ttft_p50_ms",
    "ttft_p95_ms",
    "ttft_p99_ms",
    "tpot_p95_ms",
    "gpu_hours",
    "cost",
    "max_replicas",
    "scale_events",
    "trace_seconds",
    "wall_seconds",
}


@pytest.fixture
def mooncake(tmp_path: Path) -> Path:
    path = tmp_path / "small.jsonl"
    lines = [
        json.dumps({"timestamp": i * 400, "input_length": 300 + i % 7 * 50, "output_length": 40})
        for i in range(300)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def simulate(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["simulate", *args, "--output", "json", "--target-per-replica", "4"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("policy", ["lmscale", "static:2", "hpa-gpu-util:70", "keda-queue:5"])
def test_json_output_has_the_documented_keys(
    mooncake: Path, capsys: pytest.CaptureFixture[str], policy: str
) -> None:
    result = simulate(capsys, "--trace", str(mooncake), "--policy", policy, "--max-replicas", "4")
    assert set(result) >= KEYS
    assert result["requests"] == result["completed"] == 300


def test_plot_writes_a_png(
    mooncake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "out.png"
    simulate(capsys, "--trace", str(mooncake), "--plot", str(plot), "--rate-scale", "2")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_the_sim_extra_is_a_clear_error(
    mooncake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in the operator image, which installs lmscale without the [sim] extra.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    plot = tmp_path / "out.png"
    assert main(["simulate", "--trace", str(mooncake), "--plot", str(plot)]) == 2
    err = capsys.readouterr().err
    assert "--plot needs matplotlib" in err and "pip install 'lmscale[sim]'" in err
    assert not plot.exists()


def test_malformed_trace_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"timestamp": 0, "input_length": 5, "output_length": 1}\n{oops\n')
    assert main(["simulate", "--trace", str(path)]) == 2
    assert f"{path}:2: not JSON" in capsys.readouterr().err


def test_unknown_policy_is_a_clear_error(
    mooncake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", "--trace", str(mooncake), "--policy", "magic"]) == 2
    assert "unknown policy 'magic'" in capsys.readouterr().err
