"""Runs the Argo CD health check of LanguageModelDeployment in a real Lua runtime, over every
case of its health_test.yaml, the way Argo CD does.

Fidelity to Argo CD: it runs scripts in gopher-lua, a Lua 5.1 with only the base, table and
(safe) os libraries open, sets the global `obj` to the object decoded from JSON (numbers are
doubles, null is nil, timestamps are strings), and compares status and message exactly. Here
the script runs in lupa's Lua 5.1 inside an environment holding just those libraries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lupa.lua51 as lua51
import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
CHECK_DIR = REPO / "examples" / "argocd" / "health" / "lmscale.dev" / "LanguageModelDeployment"
HEALTH_LUA = CHECK_DIR / "health.lua"
ARGOCD_CM = REPO / "examples" / "argocd" / "argocd-cm-health.yaml"
HEALTH_CODES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}

# What gopher-lua's base library offers a script (minus file loading), plus table and the
# safe os subset Argo CD preloads. No string or math library: Argo CD does not open them.
_RUNNER = """
function(source, obj)
  local chunk, err = loadstring(source, "=health.lua")
  if chunk == nil then error(err) end
  local env = {
    obj = obj, assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
    pcall = pcall, rawequal = rawequal, rawget = rawget, rawset = rawset, select = select,
    getmetatable = getmetatable, setmetatable = setmetatable, tonumber = tonumber,
    tostring = tostring, type = type, unpack = unpack, xpcall = xpcall, print = print,
    table = table,
    os = {time = os.time, clock = os.clock, date = os.date, difftime = os.difftime},
  }
  env._G = env
  setfenv(chunk, env)
  return chunk()
end
"""


class _KubeYamlLoader(yaml.SafeLoader):
    """YAML as Kubernetes decodes it: timestamps stay strings (JSON has no timestamp type)."""


_KubeYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _load_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=_KubeYamlLoader)  # noqa: S506 - safe loader subclass


def _to_lua(runtime: lua51.LuaRuntime, value: Any) -> Any:
    """Python (decoded JSON) -> Lua, as Argo CD's decodeValue does for gopher-lua."""
    if isinstance(value, dict):
        table = runtime.table()
        for key, item in value.items():
            if item is not None:  # RawSetH with LNil leaves the key absent
                table[str(key)] = _to_lua(runtime, item)
        return table
    if isinstance(value, list):
        # Append: 1-based array; a JSON null inside a list is appended as nil, as in gopher-lua.
        table = runtime.table()
        for index, item in enumerate(value, start=1):
            table[index] = _to_lua(runtime, item)
        return table
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)  # every Lua 5.1 number is a double (lua.LNumber)
    raise TypeError(f"cannot decode {type(value).__name__} from JSON: {value!r}")


def _from_lua(value: Any) -> Any:
    if lua51.lua_type(value) == "table":
        return {key: _from_lua(item) for key, item in value.items()}
    return value


def run_health(obj: dict[str, Any]) -> dict[str, Any]:
    runtime = lua51.LuaRuntime(unpack_returned_tuples=False, register_eval=False,
                               register_builtins=False)
    runner = runtime.eval(_RUNNER)
    result = runner(HEALTH_LUA.read_text(), _to_lua(runtime, obj))
    assert lua51.lua_type(result) == "table", f"health.lua returned {result!r}, not a table"
    return _from_lua(result)


def _cases() -> list[Any]:
    spec = _load_yaml(CHECK_DIR / "health_test.yaml")
    return [
        pytest.param(case["inputPath"], case["healthStatus"], id=Path(case["inputPath"]).stem)
        for case in spec["tests"]
    ]


@pytest.mark.parametrize(("input_path", "expected"), _cases())
def test_health_case(input_path: str, expected: dict[str, str]) -> None:
    health = run_health(_load_yaml(CHECK_DIR / input_path))
    assert health["status"] in HEALTH_CODES
    assert health == {"status": expected["status"], "message": expected["message"]}


def test_every_testdata_file_has_a_case() -> None:
    listed = {case.values[0] for case in _cases()}
    present = {f"testdata/{path.name}" for path in (CHECK_DIR / "testdata").glob("*.yaml")}
    assert present == listed


def test_every_health_status_is_covered() -> None:
    covered = {case.values[1]["status"] for case in _cases()}
    assert {"Healthy", "Progressing", "Degraded", "Suspended"} <= covered


def test_conversion_keeps_timestamps_as_strings_and_numbers_as_doubles() -> None:
    # Guards the faithfulness of the harness itself.
    runtime = lua51.LuaRuntime(unpack_returned_tuples=False)
    obj = _to_lua(runtime, _load_yaml(CHECK_DIR / "testdata" / "healthy.yaml"))
    probe = runtime.eval(
        "function(o) return type(o.metadata.creationTimestamp), tostring(o.metadata.generation),"
        " #o.status.conditions end"
    )
    assert tuple(probe(obj)) == ("string", "3", 6)


def test_missing_optional_fields_do_not_crash() -> None:
    # A bare object, as Argo CD may see it right after creation.
    bare = {"apiVersion": "lmscale.dev/v1alpha1", "kind": "LanguageModelDeployment",
            "metadata": {"name": "x", "namespace": "y"}, "spec": {}}
    assert run_health(bare)["status"] == "Progressing"
    bare["status"] = {"observedGeneration": 1, "conditions": None}
    assert run_health(bare)["status"] == "Progressing"


def test_argocd_cm_snippet_embeds_this_script() -> None:
    cm = _load_yaml(ARGOCD_CM)
    key = "resource.customizations.health.lmscale.dev_LanguageModelDeployment"
    assert cm["data"][key] == HEALTH_LUA.read_text()
