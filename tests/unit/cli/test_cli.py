"""The `lmscale` command as a user meets it: help, version, and a clear error without a cluster."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lmscale.cli import main


def test_help_is_for_users(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "plans GPU capacity" in out and "lmscale plan --list" in out
    assert "one module per subcommand" not in out  # the module docstring is for developers


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"lmscale {importlib.metadata.version('lmscale')}"


def test_run_help_describes_the_operator(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "Run the lmscale operator" in out and "KUBECONFIG" in out


def test_run_without_credentials_exits_with_a_clear_error(tmp_path: Path) -> None:
    """Not in a pod and no kubeconfig: one line and exit 2, not kopf retrying every minute."""
    env = {k: v for k, v in os.environ.items()
           if k != "KUBERNETES_SERVICE_HOST" and not k.startswith("LMSCALE_")}
    env |= {"KUBECONFIG": str(tmp_path / "missing"), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "lmscale", "run", "--standalone"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.startswith("lmscale run: no Kubernetes credentials")
    assert "set KUBECONFIG" in done.stderr and "Traceback" not in done.stderr
