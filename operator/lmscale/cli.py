"""The `lmscale` command: one entry point, one module per subcommand under `lmscale.commands`."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from collections.abc import Sequence

DESCRIPTION = """\
lmscale plans GPU capacity for large-language-model inference and runs models on
Kubernetes as LanguageModelDeployments, scaled from queue depth, latency and GPU use.
"""
EPILOG = """\
examples:
  lmscale plan --model llama-3.1-70b --gpu nvidia-h100-80gb --context 8192
  lmscale plan --list                      GPU types and models the planner knows
  lmscale simulate --trace FILE --model llama-3.1-8b --gpu nvidia-h100-80gb
  lmscale crd | kubectl apply --server-side -f -
  lmscale run --all-namespaces             the operator (in a pod, or with KUBECONFIG)
  lmscale gateway --model NAME=URL         the activator in front of a model's pods

Run `lmscale COMMAND --help` for a command's options.
"""


def version() -> str:
    """The installed distribution's version (what `pip show lmscale` says)."""
    try:
        return importlib.metadata.version("lmscale")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"

# Each module exposes `register(subparsers)`, which adds its subparser and sets `func`.
COMMAND_MODULES = (
    "lmscale.commands.run",
    "lmscale.commands.crd",
    "lmscale.commands.plan",
    "lmscale.commands.simulate",
    "lmscale.commands.sim",
    "lmscale.commands.devcluster",
    "lmscale.commands.gateway",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lmscale", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"lmscale {version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
            continue  # a subcommand still being built
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0
