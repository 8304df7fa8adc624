"""api and render are pure: importing them loads no Kubernetes client, kopf or HTTP library."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("kopf", "kubernetes", "urllib3", "requests", "aiohttp")


def test_api_and_render_import_no_io() -> None:
    code = (
        "import sys, lmscale.api, lmscale.api.crd, lmscale.api.semantic, lmscale.render; "
        f"print(sorted(m for m in {FORBIDDEN!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
