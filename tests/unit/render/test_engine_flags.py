"""Every flag lmscale renders, or passes on from spec.engine.args, is a flag of the pinned engine.

The lists come from each engine's parser source at the pinned release
(operator/lmscale/render/flags/*.json, derived by hack/extract_engine_flags.py), so a flag the
real engine would reject at start fails here instead of crash-looping a pod.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.unit.render import builders

from lmscale import api
from lmscale.api import Dtype, EngineKind, semantic
from lmscale.render import engines, render_deployment
from lmscale.render import flags as engine_flags

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((REPO / "examples").glob("*/lmd.yaml")) + sorted(
    (REPO / "examples" / "argocd" / "models").glob("*.yaml")
)
BASE = engines.EngineInputs(
    model_path="meta-llama/Llama-3.1-8B-Instruct",
    served_name="llama-8b",
    tensor_parallel=2,
    max_model_len=8192,
    port=8000,
    dtype=Dtype.BFLOAT16,
)
VARIANTS = [
    pytest.param({}, id="bf16"),
    pytest.param({"dtype": Dtype.FLOAT16}, id="fp16"),
    pytest.param({"dtype": Dtype.FP8}, id="fp8"),
    pytest.param({"dtype": Dtype.INT4}, id="int4"),
    pytest.param({"model_path": "s3://bucket/llama", "streamed": True}, id="streamed"),
]


def assert_engine_accepts(kind: EngineKind, args: list[str], *, model_positional: bool) -> None:
    """As the engine's parser would: every option known by its full name, every value in place."""
    scan = engine_flags.scan(kind, args)
    assert [o.written for o in scan.options if o.flag is None] == [], "unknown flags"
    assert [o.written for o in scan.options if o.abbreviation] == [], "abbreviated flags"
    assert scan.errors == ()
    expected = 1 if model_positional else 0
    assert len(scan.positionals) == expected, f"stray positionals {scan.positionals}"
    assert engine_flags.check(kind, args) == []


@pytest.mark.parametrize("kind", list(EngineKind))
@pytest.mark.parametrize("variant", VARIANTS)
def test_rendered_command_line_is_accepted(kind: EngineKind, variant: dict[str, Any]) -> None:
    engine = engines.engine(kind)
    args = engine.args(dataclasses.replace(BASE, **variant))
    assert tuple(engine.command) == engine_flags.load(kind).command
    assert_engine_accepts(kind, args, model_positional=kind is EngineKind.VLLM)


def _examples() -> list[Any]:
    out = []
    for path in EXAMPLES:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "LanguageModelDeployment":
                out.append(pytest.param(doc, id=f"{path.parent.name}/{doc['metadata']['name']}"))
    return out


@pytest.mark.parametrize("body", _examples())
def test_every_example_renders_flags_its_engine_has(body: dict[str, Any]) -> None:
    """The whole container command line, engine.args included, of each example."""
    body = {**body, "metadata": {**body["metadata"], "namespace": "ns", "uid": "u"}}
    lmd = api.LanguageModelDeployment.model_validate(body)
    resolution = semantic.resolve(lmd.spec)
    assert resolution.plan is not None, resolution.message
    container = render_deployment(lmd, resolution.plan)["spec"]["template"]["spec"]["containers"][0]
    kind = lmd.spec.engine.kind
    assert container["command"] == list(engines.engine(kind).command)
    assert_engine_accepts(kind, container["args"], model_positional=kind is EngineKind.VLLM)


@pytest.mark.parametrize("kind", list(EngineKind))
def test_user_args_are_checked_with_the_rendered_ones(kind: EngineKind) -> None:
    extra = {
        EngineKind.VLLM: ["--enable-prefix-caching", "--max-num-seqs", "128"],
        EngineKind.TGI: ["--max-concurrent-requests", "256", "--trust-remote-code"],
        EngineKind.SGLANG: ["--mem-fraction-static", "0.85", "--enable-torch-compile"],
    }[kind]
    lmd, plan = builders.planned({"engine": {"kind": kind.value, "args": extra}})
    container = render_deployment(lmd, plan)["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][-len(extra) :] == extra
    assert_engine_accepts(kind, container["args"], model_positional=kind is EngineKind.VLLM)


@pytest.mark.parametrize("kind", list(EngineKind))
def test_managed_flags_are_real_primary_flags(kind: EngineKind) -> None:
    """A managed flag is named by its primary spelling, so every alias of it is caught too."""
    flags = engine_flags.load(kind)
    for name in engines.engine(kind).managed_flags:
        assert name in flags.flags, f"{name} is not a primary flag of {kind.value}"
        assert flags.flags[name].value, f"{name} takes no value"


def test_managed_flag_catches_every_spelling() -> None:
    assert engines.managed_flag("-tp", EngineKind.VLLM) == ("-tp", "accelerator.gpusPerReplica")
    assert engines.managed_flag("--tp-size=2", EngineKind.SGLANG) == (
        "--tp-size", "accelerator.gpusPerReplica",
    )  # fmt: skip
    assert engines.managed_flag("--model", EngineKind.SGLANG) == (
        "--model", "model.name or model.source",
    )  # fmt: skip
    assert engines.managed_flag("--max_model_len", EngineKind.VLLM) == (
        "--max_model_len", "model.maxContextLength",
    )  # fmt: skip


@pytest.mark.parametrize("kind", list(EngineKind))
def test_flag_file_names_its_source_and_version(kind: EngineKind) -> None:
    flags = engine_flags.load(kind)
    assert flags.version == engine_flags.VERSIONS[kind]
    assert flags.version in engines.engine(kind).image
    assert flags.source["repository"].startswith("https://github.com/")
    assert flags.source["tag"].lstrip("v") == flags.version
    assert flags.source["paths"]
    assert "--help" in flags.flags


SCANS = [
    pytest.param(EngineKind.SGLANG, ["--tp", "2"], ["--tp"], id="sglang-prefix-is-not-a-flag"),
    pytest.param(EngineKind.SGLANG, ["--tp-size", "2"], [], id="sglang-alias"),
    pytest.param(EngineKind.TGI, ["--served-model-name", "x"], ["--served-model-name"],
                 id="tgi-has-no-served-name"),
    pytest.param(EngineKind.TGI, ["-p8000", "--port=1"], [], id="tgi-short-attached"),
    pytest.param(EngineKind.TGI, ["--max-total"], ["--max-total"], id="clap-has-no-prefixes"),
    pytest.param(EngineKind.VLLM, ["--max_model_len", "1", "-O3", "--no-enable-prefix-caching",
                                   "--compilation-config.level", "3"], [],
                 id="vllm-spellings"),
    pytest.param(EngineKind.VLLM, ["--tp", "2"], ["--tp"], id="vllm-unknown"),
    pytest.param(EngineKind.VLLM, ["--enable-prefix"], ["--enable-prefix"],
                 id="vllm-abbreviation"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "args", "unknown"), SCANS)
def test_check(kind: EngineKind, args: list[str], unknown: list[str]) -> None:
    assert engine_flags.check(kind, args) == unknown


def test_scan_reads_values_like_argparse() -> None:
    scan = engine_flags.scan(
        EngineKind.VLLM, ["m", "--served-model-name", "a", "b", "--port", "--x"]
    )
    assert [(o.written, o.values) for o in scan.options] == [
        ("--served-model-name", ("a", "b")), ("--port", ()), ("--x", ()),
    ]  # fmt: skip
    assert scan.positionals == ((0, "m"),)
    assert scan.errors == ((4, "--port expects one value"),)
