"""Every example resource is a valid LanguageModelDeployment by the API models (the source of
the CRD schema and its CEL rules), and the planner can fit each one on its GPU type."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lmscale.api.resource import API_VERSION, KIND, LanguageModelDeployment
from lmscale.planner import catalog, plan

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"
HEALTH_TESTDATA = (
    EXAMPLES / "argocd" / "health" / "lmscale.dev" / "LanguageModelDeployment" / "testdata"
)


class _KubeYamlLoader(yaml.SafeLoader):
    """YAML as the apiserver reads it: timestamps stay strings."""


_KubeYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _docs(path: Path) -> list[dict[str, Any]]:
    text = path.read_text()
    return [d for d in yaml.load_all(text, Loader=_KubeYamlLoader) if d]  # noqa: S506


def _example_files() -> list[Path]:
    gitops = sorted((EXAMPLES / "argocd" / "models").glob("*.yaml"))
    return sorted(EXAMPLES.glob("*/lmd.yaml")) + gitops


def _id(path: Path) -> str:
    return str(path.relative_to(EXAMPLES))


EXAMPLE_FILES = _example_files()


USER_EXAMPLES = (
    "llama-3.1-8b-h100-vllm", "llama-3.1-70b-tp4-h100-vllm", "qwen2.5-7b-l4-tgi",
    "qwen2.5-14b-a100-sglang", "llama-3.1-8b-pvc-cache", "llama-3.1-8b-gateway",
    "llama-3.1-8b-inference-pool",
)


@pytest.mark.parametrize("name", USER_EXAMPLES)
def test_user_example_has_resource_and_readme(name: str) -> None:
    assert (EXAMPLES / name / "lmd.yaml").is_file()
    assert (EXAMPLES / name / "README.md").is_file(), f"examples/{name} has no README.md"


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=_id)
def test_example_validates(path: Path) -> None:
    docs = _docs(path)
    assert len(docs) == 1, "one resource per file"
    doc = docs[0]
    assert (doc["apiVersion"], doc["kind"]) == (API_VERSION, KIND)
    # No namespace: the same file applies into whichever namespace kubectl or Argo CD picks.
    assert "namespace" not in doc["metadata"]
    LanguageModelDeployment.model_validate(doc)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=_id)
def test_example_fits_its_gpu(path: Path) -> None:
    spec = LanguageModelDeployment.model_validate(_docs(path)[0]).spec
    assert spec.model.architecture is not None, "examples use catalog architectures"
    model = catalog.model(spec.model.architecture)
    gpus = spec.accelerator.gpus_per_replica
    capacity = plan.plan_replica(
        model,
        catalog.gpu(spec.accelerator.type),
        dtype=spec.model.dtype.value,
        context=spec.model.max_context_length or model.max_context,
        gpus_per_replica=None if gpus == "auto" else gpus,
    )
    assert capacity.fits, capacity.reason


@pytest.mark.parametrize("path", sorted(HEALTH_TESTDATA.glob("*.yaml")), ids=lambda p: p.name)
def test_argocd_health_testdata_is_a_real_resource(path: Path) -> None:
    # The health check is tested on objects the operator could actually produce.
    LanguageModelDeployment.model_validate(_docs(path)[0])
