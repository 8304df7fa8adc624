"""What holds the operator's memory at fleet scale: loaded into `lmscale run` through
PYTHONPATH (the fleet benchmark passes its environment on), never into the product.

    PYTHONPATH=hack/memory_probe .venv/bin/python hack/bench_fleet.py \
        --sizes 200 --distinct 0 --idle-seconds 20 --no-write

Every 45 s the operator process counts the decoded Kubernetes objects it still holds (dicts
with metadata.resourceVersion), by kind, and for a sample of them the chain of referrers
that keeps them alive; each report goes to /tmp/lmscale-memory-probe/<pid>-<n>.txt.
LMSCALE_PROBE_TRIM_SECONDS=N also returns the allocator's free memory to the system every
N s (glibc malloc_trim), to tell memory held from memory kept by the allocator. With
PYTHONTRACEMALLOC=8 each report also lists the largest sites of live allocations.
"""

from __future__ import annotations

import collections
import ctypes
import gc
import os
import random
import sys
import threading
import time
import tracemalloc
import types
from pathlib import Path
from typing import Any

OUT = Path("/tmp/lmscale-memory-probe")
PERIOD_SECONDS = 45.0


def _is_object(o: Any) -> bool:
    return (type(o) is dict and isinstance(o.get("metadata"), dict)
            and "resourceVersion" in o["metadata"])


def _describe(o: Any) -> str:
    if type(o) is dict:
        return f"dict keys={list(o)[:6]}"
    return f"{type(o).__module__}.{type(o).__qualname__}"


def _holders(o: Any, exclude: set[int], depth: int = 6) -> list[str]:
    """Who refers to `o`, then to the first of those, and so on (frames left out)."""
    chain, current = [], o
    for _ in range(depth):
        refs = [r for r in gc.get_referrers(current)
                if id(r) not in exclude and not isinstance(r, types.FrameType)]
        if not refs:
            chain.append("<none>")
            break
        exclude.add(id(refs))
        chain.append(" | ".join(sorted({_describe(r) for r in refs})[:4]))
        current = refs[0]
    return chain


def report(n: int) -> None:
    gc.collect()
    objects = [o for o in gc.get_objects() if _is_object(o)]
    kinds = collections.Counter((o.get("kind"), "managedFields" in o["metadata"])
                                for o in objects)
    full = [o for o in objects if "managedFields" in o["metadata"]]
    lines = [f"{len(objects)} objects"]
    lines += [f"  {kind} (with managedFields: {mf}): {count}"
              for (kind, mf), count in kinds.most_common()]
    for o in random.Random(1).sample(full, min(12, len(full))):
        lines += ["", f"{o.get('kind')} {o['metadata'].get('name')}"]
        lines += [f"   <- {h}" for h in _holders(o, {id(objects), id(full)})]
    types_held = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
    lines += ["", "objects the collector tracks, by type:"]
    lines += [f"  {name}: {count}" for name, count in types_held.most_common(30)]
    if tracemalloc.is_tracing():  # PYTHONTRACEMALLOC=N: where the live allocations were made
        snapshot = tracemalloc.take_snapshot()
        lines += ["", "live allocations by file:"]
        lines += [f"  {s.size / 1e6:.2f} MB in {s.count} blocks: {s.traceback[0].filename}"
                  for s in snapshot.statistics("filename")[:20]]
        stats = snapshot.statistics("traceback")
        lines += ["", f"allocated and live: {sum(s.size for s in stats) / 1e6:.1f} MB; "
                  "the largest sites:"]
        for stat in stats[:25]:
            lines += [f"  {stat.size / 1e6:.2f} MB in {stat.count} blocks"]
            lines += [f"      {frame.filename}:{frame.lineno}" for frame in stat.traceback[:8]]
    (OUT / f"{os.getpid()}-{n}.txt").write_text("\n".join(lines) + "\n")


def _probe() -> None:
    for n in range(1, 1000):
        time.sleep(PERIOD_SECONDS)
        report(n)


def _trim(every: float) -> None:
    libc = ctypes.CDLL("libc.so.6")
    while True:
        time.sleep(every)
        libc.malloc_trim(0)


if len(sys.argv) > 1 and sys.argv[1] == "run" and Path(sys.argv[0]).name == "lmscale":
    OUT.mkdir(parents=True, exist_ok=True)
    threading.Thread(target=_probe, daemon=True).start()
    if trim := float(os.environ.get("LMSCALE_PROBE_TRIM_SECONDS", "0")):
        threading.Thread(target=_trim, args=(trim,), daemon=True).start()
