"""The CRD: generated from the models, committed as generated, and a valid structural schema."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lmscale import api, cli
from lmscale.api import crd

REPO = Path(__file__).resolve().parents[3]
COMMITTED = REPO / "crds" / crd.crd_filename()


def test_committed_crd_is_the_generated_one() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == crd.crd_yaml(), (
        f"{COMMITTED.relative_to(REPO)} is stale: run `lmscale crd --write crds` "
        "(and hack/sync_chart_crds.sh for the chart's copy)"
    )


def test_generation_is_deterministic() -> None:
    assert crd.crd_yaml() == crd.crd_yaml()


def test_cli_prints_the_crd(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["crd"]) == 0
    assert capsys.readouterr().out == crd.crd_yaml()


def test_cli_writes_the_crd(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["crd", "--write", str(tmp_path / "out")]) == 0
    written = tmp_path / "out" / "lmscale.dev_languagemodeldeployments.yaml"
    assert written.read_text(encoding="utf-8") == crd.crd_yaml()
    assert capsys.readouterr().out.strip() == str(written)


def test_names_and_scope() -> None:
    spec = crd.crd()["spec"]
    assert crd.crd()["metadata"]["name"] == "languagemodeldeployments.lmscale.dev"
    assert spec["group"] == "lmscale.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == "LanguageModelDeployment"
    assert spec["names"]["plural"] == "languagemodeldeployments"
    assert spec["names"]["shortNames"] == ["lmd", "lmds"]
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)


def test_subresources() -> None:
    (version,) = crd.crd()["spec"]["versions"]
    assert version["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    }


def test_printer_columns() -> None:
    (version,) = crd.crd()["spec"]["versions"]
    columns = {c["name"]: c for c in version["additionalPrinterColumns"] if "priority" not in c}
    assert list(columns) == ["Model", "GPU", "Ready", "Desired", "Queue", "URL", "Age"]
    schema = crd.openapi_schema()
    for column in columns.values():
        if column["jsonPath"].startswith(".metadata"):
            continue
        node = _node(schema, column["jsonPath"])
        assert node["type"] == column["type"], column


def _node(schema: dict[str, Any], json_path: str) -> dict[str, Any]:
    node = schema
    for part in json_path.strip(".").split("."):
        node = node["properties"][part]
    return node


def _walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for key, child in node.get("properties", {}).items():
        yield from _walk(child, f"{path}.{key}")
    if "items" in node:
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


NODES = list(_walk(crd.openapi_schema()))


def test_every_field_is_described() -> None:
    """So that `kubectl explain lmd.spec.scaling` says something useful at every level.

    Root metadata is the exception: the apiserver owns its schema (and its description).
    """
    undescribed = [
        f"{path}.{key}"
        for path, node in NODES
        for key, child in node.get("properties", {}).items()
        if not child.get("description") and f"{path}.{key}" != ".metadata"
    ]
    assert not undescribed


def test_schema_is_structural() -> None:
    """Every node has a type (or is int-or-string / free-form), and nothing is a $ref."""
    for path, node in NODES:
        assert "$ref" not in node and "title" not in node, path
        assert "type" in node or node.get("x-kubernetes-int-or-string"), path
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string"), path
            assert all(set(branch) == {"type"} for branch in node["anyOf"]), path


def test_strings_and_lists_are_bounded() -> None:
    """CEL cost estimation needs bounds on what rules may iterate over."""
    for path, node in NODES:
        if node.get("type") == "array":
            assert "maxItems" in node, path


def _has_path(node: dict[str, Any], field_path: str) -> bool:
    for part in re.findall(r"\.(\w+)", field_path):
        if part not in node.get("properties", {}):
            return False
        node = node["properties"][part]
    return True


def test_cel_field_paths_exist() -> None:
    """The apiserver refuses a CRD whose fieldPath names a field that does not exist."""
    checked = 0
    for path, node in NODES:
        for rule in node.get("x-kubernetes-validations", []):
            assert rule["message"], path
            if "fieldPath" in rule:
                assert _has_path(node, rule["fieldPath"]), (path, rule)
                checked += 1
    assert checked >= 10


def test_conditions_are_a_map_keyed_by_type() -> None:
    conditions = _node(crd.openapi_schema(), ".status.conditions")
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert conditions["items"]["properties"]["type"]["enum"] == [t.value for t in api.ConditionType]


def test_capacity_plan_has_a_camel_case_schema() -> None:
    """`kubectl explain lmd.status.capacityPlan` needs typed, described fields."""
    plan = _node(crd.openapi_schema(), ".status.capacityPlan")
    assert "x-kubernetes-preserve-unknown-fields" not in plan
    assert {"gpusPerReplica", "kvCapacityTokens", "coldStartSeconds", "memoryPerGpu",
            "autoscaling"} <= set(plan["properties"])
    assert plan["properties"]["memoryPerGpu"]["properties"]["kvCacheBytes"]["type"] == "integer"
    for path, node in _walk(plan, ".status.capacityPlan"):
        assert "_" not in path.rsplit(".", 1)[-1], path
        assert path.endswith("[]") or node.get("description"), path


def test_gpus_per_replica_is_int_or_string() -> None:
    node = _node(crd.openapi_schema(), ".spec.accelerator.gpusPerReplica")
    assert node["x-kubernetes-int-or-string"] is True
    assert node["default"] == "auto"


def test_fallbacks_are_an_ordered_list_of_gpu_types() -> None:
    node = _node(crd.openapi_schema(), ".spec.accelerator")
    fallbacks = node["properties"]["fallbacks"]
    assert fallbacks["type"] == "array" and fallbacks["maxItems"] == 4
    assert "default" not in fallbacks  # nothing stored in resources that use none
    assert fallbacks["items"]["required"] == ["type"]
    assert node["properties"]["strategy"]["enum"] == ["ordered", "cheapest"]
    assert node["properties"]["fallbackAfterSeconds"]["default"] == 60


def test_yaml_parses_back_to_the_manifest() -> None:
    assert yaml.safe_load(crd.crd_yaml()) == crd.crd()
