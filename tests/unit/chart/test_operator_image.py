"""Static checks of operator/Dockerfile (no Docker engine here): the image the chart points to
is multi-stage, slim, non-root, free of build tools, and starts `lmscale run`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO / "operator" / "Dockerfile"


def _stages() -> list[list[str]]:
    """Instructions per stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_multi_stage_with_slim_python_runtime() -> None:
    stages = _stages()
    assert len(stages) >= 2
    assert "AS builder" in stages[0][0]
    text = DOCKERFILE.read_text()
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    assert stages[-1][0] == "FROM ${PYTHON_IMAGE}"


def test_runtime_stage_is_non_root_without_build_tools() -> None:
    final = _stages()[-1]
    users = [line for line in final if line.startswith("USER ")]
    assert users == ["USER 65532:65532"]
    joined = "\n".join(final)
    for tool in ("apt-get install", "gcc", "build-essential", "pip install", "pip wheel"):
        assert tool not in joined, tool
    # The runtime takes the built venv from the builder, nothing else.
    copies = [line for line in final if line.startswith("COPY")]
    assert copies == ["COPY --from=builder /opt/lmscale /opt/lmscale"]


def test_entrypoint_runs_the_operator() -> None:
    final = _stages()[-1]
    entrypoint = next(line for line in final if line.startswith("ENTRYPOINT "))
    cmd = next(line for line in final if line.startswith("CMD "))
    assert json.loads(entrypoint.removeprefix("ENTRYPOINT ")) == ["lmscale"]
    assert json.loads(cmd.removeprefix("CMD "))[0] == "run"


def test_chart_runs_the_image_as_its_user() -> None:
    values = yaml.safe_load((REPO / "charts" / "lmscale" / "values.yaml").read_text())
    assert values["image"]["repository"] == "ghcr.io/lmscale/lmscale"
    assert values["podSecurityContext"]["runAsUser"] == 65532
    assert values["podSecurityContext"]["runAsGroup"] == 65532


def test_build_context_is_limited() -> None:
    ignore = (REPO / "operator" / "Dockerfile.dockerignore").read_text().splitlines()
    assert "*" in ignore, "everything excluded by default"
    assert {"!pyproject.toml", "!README.md", "!operator/lmscale/"} <= set(ignore)
