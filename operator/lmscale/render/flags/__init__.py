"""The command-line flags of each pinned engine release, and a scanner that reads args as it would.

The JSON files beside this module are derived from each engine's parser source at the pinned
version by `hack/extract_engine_flags.py` (source repository, tag, commit and paths are in each
file). Rendering, semantic validation of `spec.engine.args` and the engine stand-in all read
command lines through `scan`, so a flag the real engine would reject is caught before a pod
crash-loops on it.

Two parser families:
- argparse (vLLM, SGLang): `--flag value`, `--flag=value`; an unambiguous prefix of a long flag
  is accepted by the engine (allow_abbrev) but is not a flag of its own, so lmscale reports it;
  vLLM's FlexibleArgumentParser also accepts `--snake_case`, `--json-flag.key value` and `-O3`.
- clap (TGI): `--flag value`, `--flag=value`, `-p 80`, `-p80`; no prefixes; switches take no
  value; an `env` fallback names the variable read when the flag is absent.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

from lmscale.api import EngineKind

# The pinned release of each engine: its flag list and its default image tag.
VERSIONS: dict[EngineKind, str] = {
    EngineKind.VLLM: "0.11.0",
    EngineKind.TGI: "3.3.6",
    EngineKind.SGLANG: "0.5.3",
}
NAMES: dict[EngineKind, str] = {
    EngineKind.VLLM: "vLLM",
    EngineKind.TGI: "TGI",
    EngineKind.SGLANG: "SGLang",
}
_STYLE: dict[EngineKind, Literal["argparse", "clap"]] = {
    EngineKind.VLLM: "argparse",
    EngineKind.TGI: "clap",
    EngineKind.SGLANG: "argparse",
}
_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")


@dataclass(frozen=True)
class Flag:
    """One option of an engine's parser."""

    name: str  # the primary spelling, e.g. --tensor-parallel-size
    value: bool  # takes a value (False: a switch)
    nargs: str | int | None = None  # argparse nargs when not exactly one value
    aliases: tuple[str, ...] = ()  # other spellings, e.g. -tp
    negations: tuple[str, ...] = ()  # --no-x forms of a BooleanOptionalAction
    repeatable: bool = False
    env: str | None = None  # clap `env` fallback variable
    deprecated: bool = False

    @property
    def spellings(self) -> tuple[str, ...]:
        return (self.name, *self.aliases, *self.negations)


@dataclass(frozen=True)
class FlagSet:
    """Every flag of one engine release, indexed by each spelling."""

    kind: EngineKind
    version: str
    command: tuple[str, ...]
    source: dict[str, Any]
    flags: dict[str, Flag]
    style: Literal["argparse", "clap"]
    options: dict[str, Flag] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for flag in self.flags.values():
            for spelling in flag.spellings:
                self.options.setdefault(spelling, flag)

    def lookup(self, option: str) -> Flag | None:
        """The flag `option` spells exactly (with vLLM's snake_case rule), else None."""
        return self.options.get(self._normal(option))

    def completions(self, prefix: str) -> list[str]:
        """Long spellings that start with `prefix`: what argparse's allow_abbrev would try."""
        if self.style != "argparse" or not prefix.startswith("--"):
            return []
        prefix = self._normal(prefix)
        return sorted(o for o in self.options if o.startswith(prefix) and o.startswith("--"))

    def _normal(self, option: str) -> str:
        if self.kind is EngineKind.VLLM and option.startswith("--"):
            return option.replace("_", "-")
        return option


@dataclass(frozen=True)
class Option:
    """One option as written on a command line, and what the parser made of it."""

    written: str  # as in the args, before any "=": --port, --tp, -O3
    index: int  # position in the args
    flag: Flag | None  # None: unknown (or ambiguous) to this engine
    values: tuple[str, ...] = ()
    abbreviation: bool = False  # matched only as a prefix (argparse allow_abbrev)
    candidates: tuple[str, ...] = ()  # for an ambiguous prefix


@dataclass(frozen=True)
class Scan:
    """A command line read the way the engine's parser reads it."""

    options: tuple[Option, ...]
    positionals: tuple[tuple[int, str], ...]  # (index in the args, arg)
    # value problems, (index in the args, message): a missing value, a value given to a switch
    errors: tuple[tuple[int, str], ...]

    @property
    def unknown(self) -> list[str]:
        return [o.written for o in self.options if o.flag is None]


@functools.cache
def load(kind: EngineKind) -> FlagSet:
    """The flag list of the pinned release of `kind`."""
    version = VERSIONS[kind]
    text = resources.files(__package__).joinpath(f"{kind.value}-{version}.json").read_text()
    doc = json.loads(text)
    flags = {
        name: Flag(
            name=name,
            value=bool(entry["value"]),
            nargs=entry.get("nargs"),
            aliases=tuple(entry.get("aliases", ())),
            negations=tuple(entry.get("negations", ())),
            repeatable=bool(entry.get("repeatable", False)),
            env=entry.get("env"),
            deprecated=bool(entry.get("deprecated", False)),
        )
        for name, entry in doc["flags"].items()
    }
    return FlagSet(
        kind=kind,
        version=doc["version"],
        command=tuple(doc["command"]),
        source=doc["source"],
        flags=flags,
        style=_STYLE[kind],
    )


def check(kind: EngineKind, args: list[str]) -> list[str]:
    """The options in `args` that are not flags of the pinned `kind` (prefixes included)."""
    return [o.written for o in scan(kind, args).options if o.flag is None or o.abbreviation]


def suggest(kind: EngineKind, option: str) -> list[str]:
    """Flags of `kind` spelled like `option`, for a did-you-mean."""
    flags = load(kind)
    longs = [o for o in flags.options if o.startswith("--")]
    return difflib.get_close_matches(flags._normal(option), longs, n=3, cutoff=0.75)


def looks_like_option(arg: str) -> bool:
    """What argparse and clap treat as an option rather than a value."""
    return arg.startswith("-") and arg != "-" and not _NEGATIVE_NUMBER.match(arg)


def scan(kind: EngineKind, args: list[str]) -> Scan:
    """Read `args` (no program name) as the engine's parser would."""
    flags = load(kind)
    options: list[Option] = []
    positionals: list[tuple[int, str]] = []
    errors: list[tuple[int, str]] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positionals += list(enumerate(args))[i:]
            break
        if not looks_like_option(arg):
            positionals.append((i - 1, arg))
            continue
        written, inline = _split(flags, arg)
        option = _resolve(flags, written, i - 1)
        if option.flag is None:
            options.append(option)
            continue
        values, i, error = _values(option.flag, written, inline, args, i)
        if error:
            errors.append((option.index, error))
        options.append(Option(written, option.index, option.flag, values,
                              option.abbreviation))
    return Scan(tuple(options), tuple(positionals), tuple(errors))


def _split(flags: FlagSet, arg: str) -> tuple[str, str | None]:
    """(option, inline value) of `--x=v`, `-O3`, `-p80` or `--json.key=v`."""
    if arg.startswith("--"):
        name, eq, value = arg.partition("=")
        inline: str | None = value if eq else None
        if flags.kind is EngineKind.VLLM and "." in name:
            # --compilation-config.level 3: one key of a JSON flag, the next arg its value
            name = name.split(".", 1)[0]
        return name, inline
    # single dash
    if flags.kind is EngineKind.VLLM and arg.startswith("-O") and arg != "-O":
        if arg.startswith("-O."):  # -O.level 3 or -O.level=3
            _, eq, value = arg.partition("=")
            return "-O", value if eq else None
        return "-O", arg[2:].removeprefix("=")  # -O3, -O=3
    if arg in flags.options:
        return arg, None
    name, eq, value = arg.partition("=")
    if eq and name in flags.options:
        return name, value
    if len(arg) > 2 and arg[:2] in flags.options and flags.options[arg[:2]].value:
        return arg[:2], arg[2:]  # -p8000
    return arg, None


def _resolve(flags: FlagSet, written: str, index: int) -> Option:
    flag = flags.lookup(written)
    if flag is not None:
        return Option(written, index, flag)
    matches = flags.completions(written)
    targets = {flags.options[m].name for m in matches}
    if len(targets) == 1:
        return Option(written, index, flags.options[matches[0]], abbreviation=True)
    return Option(written, index, None, candidates=tuple(matches) if len(targets) > 1 else ())


def _values(
    flag: Flag, written: str, inline: str | None, args: list[str], i: int
) -> tuple[tuple[str, ...], int, str | None]:
    """The values `flag` takes from the inline part and the args after index `i`."""
    if not flag.value:
        if inline:
            return (), i, f"{written} takes no value (got {inline!r})"
        return (), i, None
    if inline is not None:
        return (inline,), i, None
    nargs = flag.nargs
    if nargs in (None, "?"):
        if i < len(args) and not looks_like_option(args[i]):
            return (args[i],), i + 1, None
        return (), i, None if nargs == "?" else f"{written} expects one value"
    taken: list[str] = []
    limit = nargs if isinstance(nargs, int) else len(args)
    while i < len(args) and len(taken) < limit and not looks_like_option(args[i]):
        taken.append(args[i])
        i += 1
    if (nargs == "+" and not taken) or (isinstance(nargs, int) and len(taken) != nargs):
        return tuple(taken), i, f"{written} expects {nargs} values"
    return tuple(taken), i, None
