#!/usr/bin/env python3
"""Derive each engine's command-line flags from its own source, as data lmscale ships.

lmscale renders engine command lines and checks `spec.engine.args`; both must agree with the
parser of the pinned engine release, not with memory. This script reads that parser's source
statically (no engine import: they need torch/CUDA or a Rust build) and writes
operator/lmscale/render/flags/<engine>-<version>.json.

Sources at the pinned versions, and how to get them without cloning:
  vLLM 0.11.0   `pip download --no-deps --no-binary :all: vllm==0.11.0` (the sdist; the metadata
                step fails without torch, but pip leaves the tarball in its unpack dir), unpack.
                vllm/_version.py names the commit (f71952c1c).
  SGLang 0.5.3  `pip download --no-deps sglang==0.5.3` (pure-Python wheel), unzip.
  TGI 3.3.6     a git clone of huggingface/text-generation-inference; tag v3.3.6.

How each parser is read:
  vLLM: `vllm serve` is a FlexibleArgumentParser subparser built by
    entrypoints/openai/cli_args.py::make_arg_parser (its own add_argument calls, then
    FrontendArgs.add_cli_args, which adds one `--<field>` per FrontendArgs dataclass field, then
    AsyncEngineArgs.add_cli_args -> EngineArgs.add_cli_args in engine/arg_utils.py).
    Most calls are `add_argument("--flag", **kwargs["field"])` with kwargs from
    `get_kwargs(SomeConfig)`, whose `_compute_kwargs` maps the dataclass field's type hint:
    a dataclass -> one JSON value; contains bool -> argparse.BooleanOptionalAction (`--x` and
    `--no-x`, no value); Literal -> one value; tuple -> nargs len or "+"; list -> nargs "+";
    anything else -> one value. This script resolves each field's annotation (following
    module-level type aliases in vllm/) and applies the same mapping, then the explicit
    keyword overrides at the call and the `kwargs["f"]["k"] = v` / `del kwargs["f"]["k"]`
    statements before it. `serve.py` adds no flags of its own; argparse adds -h/--help.
    FlexibleArgumentParser also accepts `--snake_case` spellings, `--json-flag.key value`
    and `-O3`; lmscale.render.flags models those rules, they are not separate flags.
  SGLang: launch_server.py parses with a plain argparse.ArgumentParser filled by
    srt/server_args.py::ServerArgs.add_cli_args: literal add_argument calls; the value rule
    is argparse's own (store_true / DeprecatedAction(nargs=0) take none, nargs as written).
  TGI: launcher/src/main.rs `struct Args` with clap derive: one `--kebab-case` long flag per
    field marked `long`; `short` gives `-<first letter>`; `bool` fields are switches
    (ArgAction::SetTrue), every other type takes a value (Vec<_> may repeat); `env` means
    the upper-snake field name is read as a fallback. clap adds -h/--help and -V/--version.

Usage:
  python hack/extract_engine_flags.py vllm   /path/to/vllm-0.11.0
  python hack/extract_engine_flags.py sglang /path/to/sglang-0.5.3-unzipped
  python hack/extract_engine_flags.py tgi    /path/to/text-generation-inference.git [tag]
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "operator" / "lmscale" / "render" / "flags"


# ----------------------------------------------------------------------------- argparse helpers


def _const(node: ast.AST) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return _NOT_CONST


_NOT_CONST = object()


def _action_name(node: ast.AST | None) -> str | None:
    """'store_true', 'BooleanOptionalAction', 'DeprecatedAction', ... or None."""
    if node is None:
        return None
    if isinstance(node, ast.Constant):
        return str(node.value)
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    raise SystemExit(f"unrecognised action expression: {ast.unparse(node)}")


_NO_VALUE_ACTIONS = {"store_true", "store_false", "store_const", "count", "help", "version",
                     "append_const", "BooleanOptionalAction"}


def _flag_entry(options: list[str], kw: dict[str, Any], *, custom_nargs0: set[str]) -> dict:
    """One flag as argparse would parse it: value count, aliases, --no- form."""
    action = kw.get("action")
    nargs = kw.get("nargs")
    long = [o for o in options if o.startswith("--")]
    primary = long[0] if long else options[0]
    entry: dict[str, Any] = {"aliases": [o for o in options if o != primary]}
    if action in _NO_VALUE_ACTIONS or action in custom_nargs0 or nargs == 0:
        entry["value"] = False
    else:
        entry["value"] = True
        if nargs is not None:
            entry["nargs"] = nargs
    if action == "BooleanOptionalAction":
        entry["negations"] = ["--no-" + o[2:] for o in long]
    if action == "append" or action == "extend":
        entry["repeatable"] = True
    if kw.get("deprecated") is True:
        entry["deprecated"] = True
    return primary, entry


def _call_kwargs(call: ast.Call) -> tuple[dict[str, Any], list[ast.AST]]:
    """Literal keywords of a call, and the `**expr` spreads (returned unevaluated)."""
    out: dict[str, Any] = {}
    spreads = []
    for k in call.keywords:
        if k.arg is None:
            spreads.append(k.value)
        elif k.arg == "action":
            out["action"] = _action_name(k.value)
        else:
            v = _const(k.value)
            out[k.arg] = v if v is not _NOT_CONST else "<expr>"
    return out, spreads


def _is_add_argument(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_argument")


# ----------------------------------------------------------------------------- vLLM


class _VllmTypes:
    """Dataclass fields and module-level type aliases of the vllm package, from its AST."""

    def __init__(self, root: Path) -> None:
        self.classes: dict[str, ast.ClassDef] = {}
        self.dataclasses: set[str] = set()
        self.aliases: dict[str, ast.AST] = {}
        for path in sorted((root / "vllm").rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for node in tree.body:
                if isinstance(node, ast.ClassDef):
                    self.classes.setdefault(node.name, node)
                    if any("dataclass" in ast.unparse(d) or ast.unparse(d) == "config"
                           for d in node.decorator_list):
                        self.dataclasses.add(node.name)
                elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
                        node.targets[0], ast.Name):
                    self.aliases.setdefault(node.targets[0].id, node.value)
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                        and node.value is not None and "TypeAlias" in ast.unparse(node.annotation):
                    self.aliases.setdefault(node.target.id, node.value)

    def fields(self, cls: str) -> dict[str, ast.AST]:
        """name -> annotation of a dataclass, in definition order (InitVar/ClassVar excluded)."""
        out: dict[str, ast.AST] = {}
        node = self.classes[cls]
        for base in node.bases:  # config classes rarely inherit; follow it when they do
            name = ast.unparse(base)
            if name in self.dataclasses:
                out.update(self.fields(name))
        for stmt in node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                ann = ast.unparse(stmt.annotation)
                if ann.startswith(("InitVar", "ClassVar", "dataclasses.InitVar")):
                    continue
                out[stmt.target.id] = stmt.annotation
        return out

    def hints(self, node: ast.AST, depth: int = 0) -> list[tuple[str, ast.AST]]:
        """Flattened type hints like vllm's get_type_hints: (kind, node) per Union member."""
        if depth > 20:
            raise SystemExit(f"alias loop at {ast.unparse(node)}")
        if isinstance(node, ast.Constant):
            if node.value is None:
                return [("None", node)]
            if isinstance(node.value, str):  # forward reference
                return self.hints(ast.parse(node.value, mode="eval").body, depth + 1)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            # `A | B` is types.UnionType at runtime; vllm's get_type_hints only flattens
            # typing.Union, so such a hint falls through to "str" there too.
            return [("other", node)]
        if isinstance(node, ast.Subscript):
            head = ast.unparse(node.value).split(".")[-1]
            inner = node.slice
            items = list(inner.elts) if isinstance(inner, ast.Tuple) else [inner]
            if head == "Optional":
                return self.hints(items[0], depth + 1) + [("None", node)]
            if head == "Union":
                return [h for i in items for h in self.hints(i, depth + 1)]
            if head == "Annotated":
                return self.hints(items[0], depth + 1)
            if head == "Literal":
                return [("Literal", node)]
            if head in ("list", "List", "Sequence"):
                return [("list", node)]
            if head in ("tuple", "Tuple"):
                return [("tuple", node)]
            if head in ("dict", "Dict", "Mapping"):
                return [("dict", node)]
            if head in ("type", "Type", "Callable"):
                return [("other", node)]
            return self.hints(node.value, depth + 1)
        name = ast.unparse(node).split(".")[-1]
        if name in ("bool", "int", "float", "str", "dict", "list", "tuple", "Any"):
            return [(name, node)]
        if name in self.dataclasses:
            return [("dataclass", node)]
        if name in self.aliases:
            return self.hints(self.aliases[name], depth + 1)
        return [("other", node)]

    def kwargs(self, cls: str) -> dict[str, dict[str, Any]]:
        """What get_kwargs(cls) decides per field that matters for parsing."""
        out = {}
        for name, ann in self.fields(cls).items():
            kinds = [k for k, _ in self.hints(ann)]
            kw: dict[str, Any] = {}
            if "dataclass" in kinds:
                pass  # one JSON value
            elif "bool" in kinds:
                kw["action"] = "BooleanOptionalAction"
            elif "Literal" in kinds:
                pass
            elif "tuple" in kinds:
                node = dict(self.hints(ann))["tuple"]
                elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
                ellipsis = any(isinstance(e, ast.Constant) and e.value is Ellipsis for e in elts)
                kw["nargs"] = "+" if ellipsis else len(elts)
            elif "list" in kinds:
                kw["nargs"] = "+"
            out[name] = kw
        return out


def _vllm_functions(root: Path) -> list[tuple[Path, ast.FunctionDef]]:
    """The functions that build `vllm serve`'s parser, in the order make_arg_parser calls them."""
    want = [
        ("vllm/entrypoints/openai/cli_args.py", None, "make_arg_parser"),
        ("vllm/entrypoints/openai/cli_args.py", "FrontendArgs", "add_cli_args"),
        ("vllm/engine/arg_utils.py", "AsyncEngineArgs", "add_cli_args"),
        ("vllm/engine/arg_utils.py", "EngineArgs", "add_cli_args"),
    ]
    out = []
    for rel, cls, fn in want:
        tree = ast.parse((root / rel).read_text())
        scope = tree.body
        if cls:
            scope = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls).body
        out.append((root / rel, next(n for n in scope
                                     if isinstance(n, ast.FunctionDef) and n.name == fn)))
    return out


def _walk_ordered(stmts: list[ast.stmt], env: dict[str, Any]):
    """Yield (stmt-or-call, loop bindings) in source order, expanding literal for-loops."""
    for stmt in stmts:
        if isinstance(stmt, ast.For):
            yield from _expand_for(stmt, env)
            continue
        if isinstance(stmt, (ast.If, ast.With, ast.Try)):
            body = list(stmt.body) + list(getattr(stmt, "orelse", []))
            yield from _walk_ordered(body, env)
            continue
        yield stmt, env


def _expand_for(stmt: ast.For, env: dict[str, Any]):
    it = stmt.iter
    # for key, value in X_kwargs.items(): one iteration per field of the get_kwargs class
    if isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) and it.func.attr == "items":
        var = ast.unparse(it.func.value)
        names = [ast.unparse(e) for e in stmt.target.elts]
        for field in env["__kwargs__"][var]:
            yield from _walk_ordered(stmt.body, {**env, names[0]: field,
                                                 names[1]: ("spread", var, field)})
        return
    items = _loop_items(it)
    if items is None:
        # a loop over something computed: keep walking its body, unexpanded
        yield from _walk_ordered(stmt.body, env)
        return
    for item in items:
        bound = dict(env)
        if isinstance(stmt.target, ast.Tuple):
            for t, v in zip(stmt.target.elts, item, strict=True):
                bound[ast.unparse(t)] = v
        else:
            bound[ast.unparse(stmt.target)] = item
        yield from _walk_ordered(stmt.body, bound)


def _loop_items(node: ast.AST) -> list | None:
    """A literal list/tuple to loop over; names inside (e.g. `str`) are kept as their text."""
    if not isinstance(node, (ast.List, ast.Tuple)):
        return None

    def value(n: ast.AST) -> Any:
        if isinstance(n, ast.Tuple):
            return tuple(value(e) for e in n.elts)
        v = _const(n)
        return ast.unparse(n) if v is _NOT_CONST else v

    return [value(e) for e in node.elts]


def _option_string(node: ast.AST, env: dict[str, Any]) -> str:
    v = _const(node)
    if isinstance(v, str):
        return v
    if isinstance(node, ast.Name) and isinstance(env.get(node.id), str):
        return env[node.id]
    if isinstance(node, ast.JoinedStr):  # f"--{key.replace('_', '-')}"
        text = ast.unparse(node)
        m = re.fullmatch(r"""f["']--\{(\w+)\.replace\(['"]_['"], ['"]-['"]\)\}["']""", text)
        if m and m.group(1) in env:
            return "--" + env[m.group(1)].replace("_", "-")
    raise SystemExit(f"cannot read option string {ast.unparse(node)}")


def extract_vllm(root: Path) -> dict:
    types = _VllmTypes(root)
    flags: dict[str, dict] = {}
    positionals = []
    for _path, fn in _vllm_functions(root):
        env: dict[str, Any] = {"__kwargs__": {}}
        for stmt, bound in _walk_ordered(fn.body, env):
            _vllm_statement(stmt, bound, env, types, flags, positionals)
    flags.setdefault("--help", {"aliases": ["-h"], "value": False})
    return {"flags": flags, "positionals": positionals}


def _vllm_statement(stmt, bound, env, types, flags, positionals) -> None:
    kwmap = env["__kwargs__"]
    # X_kwargs = get_kwargs(Config)
    if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call) and \
            ast.unparse(stmt.value.func) == "get_kwargs":
        kwmap[ast.unparse(stmt.targets[0])] = types.kwargs(ast.unparse(stmt.value.args[0]))
        return
    # X_kwargs["field"]["key"] = value
    if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Subscript):
        tgt = stmt.targets[0]
        m = re.fullmatch(r"(\w+)\['(\w+)'\]\['(\w+)'\]", ast.unparse(tgt))
        if m and m.group(1) in kwmap:
            key = m.group(3)
            if key == "action":
                kwmap[m.group(1)][m.group(2)]["action"] = _action_name(stmt.value)
            elif key == "nargs":
                kwmap[m.group(1)][m.group(2)]["nargs"] = _const(stmt.value)
        return
    # del X_kwargs["field"]["nargs"]
    if isinstance(stmt, ast.Delete):
        for tgt in stmt.targets:
            m = re.fullmatch(r"(\w+)\['(\w+)'\]\['(\w+)'\]", ast.unparse(tgt))
            if m and m.group(1) in kwmap:
                kwmap[m.group(1)][m.group(2)].pop(m.group(3), None)
        return
    for node in ast.walk(stmt):
        if not _is_add_argument(node):
            continue
        options = [_option_string(a, bound) for a in node.args]
        kw, spreads = _call_kwargs(node)
        merged: dict[str, Any] = {}
        for spread in spreads:
            if isinstance(spread, ast.Name) and isinstance(bound.get(spread.id), tuple):
                _, var, field = bound[spread.id]
                merged.update(kwmap[var][field])
                continue
            m = re.fullmatch(r"(\w+)\['(\w+)'\]", ast.unparse(spread))
            if not m or m.group(1) not in kwmap:
                raise SystemExit(f"unknown kwargs spread {ast.unparse(spread)}")
            merged.update(kwmap[m.group(1)][m.group(2)])
        merged.update(kw)
        if not options[0].startswith("-"):
            positionals.append({"name": options[0], "nargs": merged.get("nargs")})
            continue
        primary, entry = _flag_entry(options, merged, custom_nargs0=set())
        if primary in flags:
            raise SystemExit(f"{primary} added twice")
        flags[primary] = entry


# ----------------------------------------------------------------------------- SGLang


def extract_sglang(root: Path) -> dict:
    path = root / "sglang" / "srt" / "server_args.py"
    tree = ast.parse(path.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ServerArgs")
    fn = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "add_cli_args")
    # custom Action classes whose __init__ defaults nargs=0 take no value
    nargs0 = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any("Action" in ast.unparse(b) for b in node.bases):
            init = next((n for n in node.body if isinstance(n, ast.FunctionDef)
                         and n.name == "__init__"), None)
            if init and "nargs=0" in ast.unparse(init.args):
                nargs0.add(node.name)
    flags: dict[str, dict] = {}
    for stmt, bound in _walk_ordered(fn.body, {}):
        for node in ast.walk(stmt):
            if not _is_add_argument(node):
                continue
            options = [_option_string(a, bound) for a in node.args]
            kw, spreads = _call_kwargs(node)
            if spreads:
                raise SystemExit(f"unexpected **kwargs at line {node.lineno}")
            primary, entry = _flag_entry(options, kw, custom_nargs0=nargs0)
            if primary in flags:
                raise SystemExit(f"{primary} added twice")
            flags[primary] = entry
    flags.setdefault("--help", {"aliases": ["-h"], "value": False})
    return {"flags": flags, "positionals": []}


# ----------------------------------------------------------------------------- TGI

_FIELD = re.compile(r"^\s*(?:pub\s+)?(\w+)\s*:\s*([^,]+),\s*$")
_ATTR = re.compile(r"^\s*#\[(?:clap|arg)\((.*)\)\]\s*$")


def extract_tgi(source: str) -> dict:
    body = source.split("struct Args {", 1)[1].split("\n}\n", 1)[0]
    flags: dict[str, dict] = {}
    attrs: list[str] = []
    for line in body.splitlines():
        if m := _ATTR.match(line):
            attrs.append(m.group(1))
            continue
        if m := _FIELD.match(line):
            name, ty = m.group(1), m.group(2).strip()
            words = {w.strip().split("=")[0].strip() for a in attrs for w in a.split(",")}
            attrs = []
            if "long" not in words:
                continue
            flag = "--" + name.replace("_", "-")
            entry: dict[str, Any] = {"aliases": ["-" + name[0]] if "short" in words else []}
            entry["value"] = ty != "bool"
            if ty.startswith("Vec<"):
                entry["repeatable"] = True
            if "env" in words:
                entry["env"] = name.upper()
            flags[flag] = entry
    flags["--help"] = {"aliases": ["-h"], "value": False}
    flags["--version"] = {"aliases": ["-V"], "value": False}
    # clap's derive gives `short` the field's first letter: --port and --prometheus-port both
    # claim -p. The generated reference (docs/source/reference/launcher.md) shows both; clap
    # matches the first definition, so -p means --port. Record it once, where it works.
    seen: dict[str, str] = {}
    for flag, entry in flags.items():
        for alias in list(entry["aliases"]):
            if alias in seen:
                entry["aliases"].remove(alias)
                entry.setdefault("shadowed_aliases", []).append(alias)
            else:
                seen[alias] = flag
    return {"flags": flags, "positionals": []}


# ----------------------------------------------------------------------------- main


def _write(engine: str, version: str, source: dict, command: list[str], data: dict) -> Path:
    doc = {
        "engine": engine,
        "version": version,
        "command": command,
        "source": source,
        "derived_by": "hack/extract_engine_flags.py",
        "positionals": data["positionals"],
        "flags": dict(sorted(data["flags"].items())),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"{engine}-{version}.json"
    out.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    return out


def main(argv: list[str]) -> int:
    engine, where = argv[0], Path(argv[1])
    if engine == "vllm":
        version = re.search(r"__version__ = version = '([^']+)'",
                            (where / "vllm/_version.py").read_text()).group(1)
        commit = re.search(r"commit_id = '(?:g)?([0-9a-f]+)'",
                           (where / "vllm/_version.py").read_text()).group(1)
        source = {
            "repository": "https://github.com/vllm-project/vllm",
            "tag": f"v{version}",
            "commit": commit,
            "commit_note": "abbreviated, as vllm/_version.py of the release sdist records it",
            "artifact": f"vllm-{version}.tar.gz (PyPI sdist)",
            "paths": ["vllm/entrypoints/cli/serve.py", "vllm/entrypoints/openai/cli_args.py",
                      "vllm/engine/arg_utils.py", "vllm/config/", "vllm/utils/__init__.py"],
        }
        data = extract_vllm(where)
        path = _write("vllm", version, source, ["vllm", "serve"], data)
    elif engine == "sglang":
        version = re.search(r'__version__ = "([^"]+)"',
                            (where / "sglang/version.py").read_text()).group(1)
        source = {
            "repository": "https://github.com/sgl-project/sglang",
            "tag": f"v{version}",
            "commit": None,
            "commit_note": "the wheel records no commit; read from the PyPI release of the tag",
            "artifact": f"sglang-{version}-py3-none-any.whl (PyPI)",
            "paths": ["python/sglang/launch_server.py", "python/sglang/srt/server_args.py"],
        }
        data = extract_sglang(where)
        path = _write("sglang", version, source, ["python3", "-m", "sglang.launch_server"], data)
    elif engine == "tgi":
        tag = argv[2] if len(argv) > 2 else "v3.3.6"
        git = ["git", "--git-dir", str(where)]
        commit = subprocess.check_output(
            [*git, "rev-parse", f"{tag}^{{commit}}"], text=True
        ).strip()
        text = subprocess.check_output([*git, "show", f"{tag}:launcher/src/main.rs"], text=True)
        source = {
            "repository": "https://github.com/huggingface/text-generation-inference",
            "tag": tag,
            "commit": commit,
            "paths": ["launcher/src/main.rs"],
        }
        path = _write("tgi", tag.lstrip("v"), source, ["text-generation-launcher"],
                      extract_tgi(text))
    else:
        raise SystemExit(f"unknown engine {engine}: vllm, sglang or tgi")
    doc = json.loads(path.read_text())
    print(f"{path}: {len(doc['flags'])} flags")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
