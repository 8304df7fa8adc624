"""Every `lmscale ...` command that a doc, an example, a chart note or a message in the code
names must parse with the real argument parser: a renamed flag breaks this test, not users."""

from __future__ import annotations

import argparse
import functools
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from lmscale.cli import build_parser

REPO = Path(__file__).resolve().parents[3]
SOURCES = [
    REPO / "README.md", *sorted((REPO / "docs").glob("**/*.md")),
    *sorted((REPO / "examples").glob("**/*.md")), *sorted((REPO / "examples").glob("**/*.yaml")),
    *sorted((REPO / "charts").glob("**/*.txt")), *sorted((REPO / "charts").glob("**/*.yaml")),
    *sorted((REPO / "operator" / "lmscale").glob("**/*.py")), *sorted(REPO.glob("crds/*.yaml")),
    REPO / "Makefile", *sorted((REPO / "hack").glob("**/*.sh")),
]
# `lmscale` then words, inside backticks or at the start of a shell line.
_INLINE = re.compile(r"`(?:\$ )?(?:\S*/)?(lmscale (?:[^`\n])+)`")
_LINE = re.compile(r"^\s*(?:\$ )?(?:\S*/)?(lmscale \S.*)$", re.MULTILINE)
# Where a command line ends: a pipe, a redirect, a comment, another command.
_END = re.compile(r"\s(?:\||>|&&|;|#)|\s{2,}")
# Placeholders that stand for a value the reader picks.
_ELLIPSIS = {"...", "…"}


def _commands() -> Iterator[tuple[str, str, bool]]:
    """(where, command, inline): inline when quoted in backticks, else a line of a block."""
    for path in SOURCES:
        text = re.sub(r"\\{1,2}\n\s*", " ", path.read_text(errors="replace"))
        for pattern, inline in ((_INLINE, True), (_LINE, False)):
            for match in pattern.finditer(text):
                command = _END.split(match.group(1))[0].strip().rstrip(".,:;)")
                line = text.count("\n", 0, match.start()) + 1
                yield f"{path.relative_to(REPO)}:{line}", command, inline


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _words(command: str) -> list[str] | None:
    try:
        words = shlex.split(command)
    except ValueError:
        return None  # prose that merely starts with the name
    # `--model ...` stands for a value; `a|b|...` for one of the alternatives.
    return [w.split("|")[0] if "|" in w else ("x" if w in _ELLIPSIS else w)
            for w in words[1:]]


NAMED = sorted(set(_commands()))


@functools.cache
def _parser() -> argparse.ArgumentParser:
    return build_parser()


def test_the_docs_name_commands() -> None:
    assert len(NAMED) >= 20  # the scan finds them (guards the patterns themselves)


@pytest.mark.parametrize(("where", "command", "inline"), NAMED,
                         ids=[f"{w} {c}" for w, c, _ in NAMED])
def test_named_command_parses(where: str, command: str, inline: bool) -> None:
    words = _words(command)
    parser = _parser()
    if not words or (not inline and words[0] not in _subcommands(parser)):
        pytest.skip("prose that starts with the name, not a command line")
    if words[0].isupper():
        pytest.skip("a placeholder: lmscale COMMAND")
    if not any(w.startswith("-") for w in words):
        # Naming a command (`lmscale simulate`), not running it: each word is a subcommand.
        for word in words:
            choices = _subcommands(parser)
            assert word in choices, f"{where}: `{command}`: no command {word!r}"
            parser = choices[word]
        return
    try:
        parser.parse_args(words)
    except SystemExit as stop:
        if stop.code != 0:
            # A flag named in passing (`lmscale simulate --plot`): the command and every
            # option must exist, though required values are left out.
            unknown = _unknown_words(parser, words)
            assert not unknown, f"{where}: `{command}` does not parse: {unknown}"


def _unknown_words(parser: argparse.ArgumentParser, words: list[str]) -> list[str]:
    for word in words:
        choices = _subcommands(parser)
        if word not in choices:
            break
        parser = choices[word]
    options = {o for action in parser._actions for o in action.option_strings}
    return [w for w in words if w.startswith("-") and w.split("=")[0] not in options]
