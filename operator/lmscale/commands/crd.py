"""`lmscale crd`: print the CustomResourceDefinition generated from the API models, or write it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lmscale.api import crd


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `crd` subcommand."""
    parser = subparsers.add_parser(
        "crd",
        help="print the LanguageModelDeployment CRD (YAML)",
        description=(
            "Print the LanguageModelDeployment CustomResourceDefinition generated from "
            "lmscale's API models; with --write, write it to DIR/"
            f"{crd.crd_filename()} instead (`lmscale crd --write crds`)."
        ),
    )
    parser.add_argument(
        "--write",
        metavar="DIR",
        type=Path,
        help=f"write DIR/{crd.crd_filename()} instead of printing",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print or write the CRD; print the path written so scripts can pick it up."""
    text = crd.crd_yaml()
    if args.write is None:
        sys.stdout.write(text)
        return 0
    args.write.mkdir(parents=True, exist_ok=True)
    path = args.write / crd.crd_filename()
    path.write_text(text, encoding="utf-8")
    print(path)
    return 0
