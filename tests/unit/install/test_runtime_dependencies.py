"""The operator's runtime install (`pip install lmscale`, no extras) stays lean: it never
pulls the plotting and data stack that only `lmscale simulate --plot` uses."""

from __future__ import annotations

import importlib.metadata as metadata
import re
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[3]
HEAVY = {"matplotlib", "numpy", "pandas", "pillow", "rich", "prometheus-api-client",
         "kubernetes"}  # the generated client: 126 MB of models lmscale never used


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_closure(root: str = "lmscale") -> dict[str, list[str]]:
    """Every installed distribution the runtime install pulls, with the chain that pulls it,
    read from the installed metadata (Requires-Dist), extras and other platforms left out."""
    env = {"extra": ""}
    found: dict[str, list[str]] = {_name(root): [root]}
    queue = [root]
    while queue:
        current = queue.pop()
        for line in metadata.requires(current) or []:
            requirement = Requirement(line)
            if requirement.marker is not None and not requirement.marker.evaluate(env):
                continue  # an extra, or another platform or Python
            name = _name(requirement.name)
            if name in found:
                continue
            found[name] = [*found[_name(current)], name]
            try:
                metadata.distribution(name)
            except metadata.PackageNotFoundError:
                continue  # not installed here; the lock file test covers it
            queue.append(name)
    return found


def test_runtime_install_pulls_no_plotting_or_data_stack() -> None:
    closure = runtime_closure()
    assert "kopf" in closure and "multidict" in closure  # the walk works, through aiohttp
    pulled = {name: " -> ".join(chain) for name, chain in closure.items() if name in HEAVY}
    assert pulled == {}


def test_the_sim_extra_carries_the_plotting() -> None:
    extras = [Requirement(r) for r in metadata.requires("lmscale") or []
              if "extra ==" in r and "sim" in r]
    assert {_name(r.name) for r in extras} >= {"matplotlib", "rich"}


def test_lock_file_pins_every_runtime_package_by_hash() -> None:
    """operator/requirements.lock is what the image installs (pip --require-hashes)."""
    text = (REPO / "operator" / "requirements.lock").read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", text, flags=re.MULTILINE))
    locked = {_name(n) for n in pins}
    assert locked.isdisjoint(HEAVY)
    wanted = {n for n in runtime_closure() if n != "lmscale"}
    assert wanted <= locked, f"missing from the lock: {sorted(wanted - locked)}"
    for block in re.split(r"\n(?=[A-Za-z0-9_.-]+==)", text.split("\n", 1)[1]):
        if "==" in block.split("\n", 1)[0]:
            assert "--hash=sha256:" in block, block.split("\n", 1)[0]
