"""`lmscale plan -f` and the operator plan every example the same way: same GPU type, degree
(auto included), context and KV cache. Both default the context to the model's maximum.

Degrees are ranked by the mean-latency estimate here (tests/unit/conftest.py); that the two
hand `gpusPerReplica: auto` the same workload, the only input the calibration adds, is
checked on its own."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml

from lmscale.api import semantic
from lmscale.api.resource import LanguageModelDeployment
from lmscale.commands import plan as plan_command
from lmscale.planner import catalog

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((REPO / "examples").glob("*/lmd.yaml")) + sorted(
    (REPO / "examples" / "argocd" / "models").glob("*.yaml"))
SAME = ("gpu", "gpus_per_replica", "context", "dtype", "kv_capacity_tokens",
        "max_concurrent_sequences", "gpus_per_replica_reason")


def _args(path: Path) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lmscale")
    plan_command.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["plan", "-f", str(path), "-o", "json"])


def _cli(path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    args = _args(path)
    assert args.func(args) == 0
    data: dict[str, object] = json.loads(capsys.readouterr().out)
    return data


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(REPO / "examples")))
def test_operator_and_cli_agree(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = yaml.safe_load(path.read_text())
    spec = LanguageModelDeployment.model_validate(doc).spec
    resolution = semantic.resolve(spec)
    assert resolution.plan is not None, resolution.message
    operator = resolution.plan.to_dict()
    cli = _cli(path, capsys)
    assert {key: cli[key] for key in SAME} == {key: operator[key] for key in SAME}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(REPO / "examples")))
def test_operator_and_cli_choose_for_the_same_workload(path: Path) -> None:
    spec = LanguageModelDeployment.model_validate(yaml.safe_load(path.read_text())).spec
    request = plan_command.Request.from_args(_args(path), catalog.default())
    assert request.workload() == semantic.workload(spec)
