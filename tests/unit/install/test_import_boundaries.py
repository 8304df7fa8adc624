"""The import-linter contracts of pyproject.toml, checked with the tests: decision logic
(api, planner, render, policy, the simulator's engine) that pulled in an I/O package would
no longer be pure, and `make lint` alone is not run by CI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_decision_logic_never_imports_io() -> None:
    linter = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(linter), "--no-cache"], cwd=REPO, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
