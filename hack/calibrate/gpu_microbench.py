#!/usr/bin/env python3
"""Measure what a GPU really achieves, to calibrate the planner's efficiency factors.

Run on a machine with an NVIDIA GPU (no network needed):

    python3 hack/calibrate/gpu_microbench.py --out DIR [--budget-seconds 400]

It writes DIR/calibration.json with:
- `environment`: nvidia-smi, Python, torch, CUDA and vLLM versions;
- `memory`: total and free device memory as cudaMemGetInfo reports them;
- `bandwidth`: achieved HBM bandwidth of large device-to-device copies and of a reduction;
- `decode_gemm`: F.linear over many distinct weight matrices (more bytes than L2 holds), as a
  decode step streams its weights, for M = 1..512 rows: achieved bandwidth and FLOP/s;
- `prefill_gemm`: the same with M >= 512: achieved dense bf16 (and fp8 where torch can) FLOP/s;
- `vllm`: if vLLM is installed, hack/calibrate/vllm_decode.py run with dummy weights (no
  download): engine start seconds, KV-cache size, decode step times and prefill rate.

Only the standard library is imported at the top, so it reports what is missing instead of
failing where torch or vLLM are absent.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
GIB = 1 << 30


def _run(cmd: list[str], timeout: float = 30) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        return (done.stdout + done.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unavailable: {error}"


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    query = "name,memory.total,driver_version,clocks.max.sm,clocks.max.mem,power.limit,pci.bus_id"
    return {
        "nvidia_smi": _run(["nvidia-smi", f"--query-gpu={query}", "--format=csv"]),
        "nvidia_smi_topology": _run(["nvidia-smi", "topo", "-m"]),
        "python": sys.version,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": _version("torch"),
        "vllm": _version("vllm"),
        "transformers": _version("transformers"),
        "flashinfer": _version("flashinfer-python") or _version("flashinfer"),
    }


def _timer(torch: Any, fn: Any, *, warmup: int = 3, iters: int = 10) -> float:
    """Median seconds of `fn` over `iters` runs, timed with CUDA events."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    times.sort()
    return times[len(times) // 2]


def bandwidth(torch: Any) -> dict[str, Any]:
    """Copy (read + write) and reduction (read) bandwidth over 4 GiB buffers."""
    size = 4 * GIB
    a = torch.empty(size // 2, dtype=torch.bfloat16, device="cuda").normal_()
    b = torch.empty_like(a)
    copy_s = _timer(torch, lambda: b.copy_(a))
    sum_s = _timer(torch, lambda: a.sum(dtype=torch.float32))
    return {
        "buffer_bytes": size,
        "copy_seconds": copy_s,
        "copy_bytes_per_second": 2 * size / copy_s,
        "reduce_seconds": sum_s,
        "reduce_bytes_per_second": size / sum_s,
    }


def decode_gemm(torch: Any) -> list[dict[str, Any]]:
    """F.linear over distinct weights totalling ~8 GiB: a decode step's weight streaming."""
    import torch.nn.functional as F

    rows = []
    for k, n in ((4096, 4096), (8192, 8192), (4096, 14336)):
        count = max(1, (8 * GIB) // (k * n * 2))
        ws = [torch.empty(n, k, dtype=torch.bfloat16, device="cuda").normal_()
              for _ in range(count)]
        weight_bytes = count * k * n * 2
        for m in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512):
            x = torch.randn(m, k, dtype=torch.bfloat16, device="cuda")

            def step(x: Any = x, ws: list[Any] = ws) -> None:
                for w in ws:
                    F.linear(x, w)

            replay, graphed = _graphed(torch, step)
            seconds = _timer(torch, replay, warmup=2, iters=5)
            rows.append({
                "m": m, "k": k, "n": n, "matrices": count, "seconds": seconds,
                "cuda_graph": graphed,
                "weight_bytes_per_second": weight_bytes / seconds,
                "flops_per_second": 2 * m * k * n * count / seconds,
            })
        ws.clear()
        torch.cuda.empty_cache()
    return rows


def _graphed(torch: Any, fn: Any) -> tuple[Any, bool]:
    """`fn` captured in a CUDA graph, as vLLM runs decode steps: no launch gaps."""
    try:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            fn()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        return graph.replay, True
    except Exception:  # noqa: BLE001 - fall back to eager launches
        return fn, False


def prefill_gemm(torch: Any) -> list[dict[str, Any]]:
    """Dense GEMMs at prefill shapes in bf16, and fp8 via torch._scaled_mm where it exists."""
    import torch.nn.functional as F

    rows = []
    shapes = ((4096, 4096), (4096, 28672), (14336, 4096), (8192, 8192), (8192, 57344))
    for k, n in shapes:
        w = torch.randn(n, k, dtype=torch.bfloat16, device="cuda")
        for m in (512, 1024, 2048, 4096, 8192, 16384):
            x = torch.randn(m, k, dtype=torch.bfloat16, device="cuda")
            seconds = _timer(torch, lambda x=x, w=w: F.linear(x, w))
            rows.append({"dtype": "bfloat16", "m": m, "k": k, "n": n, "seconds": seconds,
                         "flops_per_second": 2 * m * k * n / seconds})
            if m in (2048, 8192) and hasattr(torch, "_scaled_mm"):
                rows.extend(_fp8_gemm(torch, m, k, n))
        torch.cuda.empty_cache()
    return rows


def _fp8_gemm(torch: Any, m: int, k: int, n: int) -> list[dict[str, Any]]:
    try:
        a = torch.randn(m, k, device="cuda").to(torch.float8_e4m3fn)
        b = torch.randn(n, k, device="cuda").to(torch.float8_e4m3fn).t()
        one = torch.tensor(1.0, device="cuda")
        seconds = _timer(torch, lambda: torch._scaled_mm(a, b, scale_a=one, scale_b=one,
                                                         out_dtype=torch.bfloat16))
        return [{"dtype": "float8", "m": m, "k": k, "n": n, "seconds": seconds,
                 "flops_per_second": 2 * m * k * n / seconds}]
    except Exception as error:  # noqa: BLE001 - an optional measurement
        return [{"dtype": "float8", "m": m, "k": k, "n": n, "error": repr(error)[:300]}]


def torch_measurements(results: dict[str, Any], out: Path) -> None:
    try:
        import torch
    except Exception as error:  # noqa: BLE001
        results["torch_error"] = repr(error)
        _write(results, out, "torch.json")
        return
    if not torch.cuda.is_available():
        results["torch_error"] = "torch has no CUDA device"
        _write(results, out, "torch.json")
        return
    props = torch.cuda.get_device_properties(0)
    free, total = torch.cuda.mem_get_info()
    results["device"] = {
        "name": props.name, "capability": f"{props.major}.{props.minor}",
        "multiprocessors": props.multi_processor_count,
        "l2_bytes": getattr(props, "L2_cache_size", None),
        "torch_cuda": torch.version.cuda,
    }
    results["memory"] = {"total_bytes": total, "free_bytes": free,
                         "total_mib": total / (1 << 20)}
    for name, measure in (("bandwidth", bandwidth), ("decode_gemm", decode_gemm),
                          ("prefill_gemm", prefill_gemm)):
        started = time.perf_counter()
        try:
            results[name] = measure(torch)
        except Exception as error:  # noqa: BLE001 - keep what the others measured
            results[name] = {"error": repr(error)[:500]}
        results.setdefault("seconds", {})[name] = time.perf_counter() - started
        torch.cuda.empty_cache()
        _write(results, out, "torch.json")
        print(f"{name}: {time.perf_counter() - started:.1f}s", flush=True)


def torch_in_child(results: dict[str, Any], out: Path, deadline: float) -> None:
    """The torch measurements in their own process, so vLLM later gets a clean GPU."""
    cmd = [sys.executable, __file__, "--out", str(out), "--part", "torch"]
    try:
        code = subprocess.run(cmd, timeout=min(150, max(30, deadline - time.monotonic() - 60)),
                              check=False).returncode
    except subprocess.TimeoutExpired:
        code = -9
    results["torch_returncode"] = code
    part = out / "torch.json"
    if part.exists():
        results.update(json.loads(part.read_text()))
        part.unlink()


def vllm_measurements(results: dict[str, Any], out: Path, deadline: float) -> None:
    """Each model in its own process, so its GPU memory goes back when it ends."""
    if not results["environment"]["vllm"]:
        results["vllm"] = {"skipped": "vLLM is not installed"}
        return
    runs = results.setdefault("vllm", {})
    for model, minimum in (("llama-3.1-8b", 150), ("llama-3.2-1b", 100)):
        left = deadline - time.monotonic()
        if left < minimum:
            runs[model] = {"skipped": f"only {left:.0f}s left"}
            continue
        log = out / f"vllm_{model}.log"
        result = out / f"vllm_{model}.json"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
        cmd = [sys.executable, str(HERE / "vllm_decode.py"), "--model", model,
               "--result", str(result), "--deadline-seconds", str(left - 15)]
        started = time.monotonic()
        with log.open("w") as handle:
            try:
                code = subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                      timeout=left - 5, check=False).returncode
            except subprocess.TimeoutExpired:
                code = -9
        entry: dict[str, Any] = {"returncode": code,
                                 "wall_seconds": time.monotonic() - started}
        if result.exists():
            entry.update(json.loads(result.read_text()))
        entry["log_facts"] = parse_vllm_log(log.read_text(errors="replace"))
        runs[model] = entry
        _write(results, out)
        print(f"vllm {model}: rc={code} {entry['wall_seconds']:.0f}s", flush=True)


def parse_vllm_log(text: str) -> dict[str, Any]:
    """The memory and start-up figures vLLM logs (V1 and V0 spellings)."""
    import re

    patterns = {
        "model_loading_gib": r"Model loading took ([\d.]+) ?GiB",
        "available_kv_cache_gib": r"Available KV cache memory: ([\d.]+) GiB",
        "kv_cache_tokens": r"GPU KV cache size: ([\d,]+) tokens",
        "gpu_blocks": r"# GPU blocks: (\d+)",
        "torch_compile_seconds": r"torch.compile takes ([\d.]+) s in total",
        "graph_capture_seconds": r"Graph capturing finished in ([\d.]+) secs",
        "graph_capture_gib": r"Graph capturing finished in [\d.]+ secs, took ([\d.]+) GiB",
        "init_engine_seconds": r"init engine .*? took ([\d.]+) seconds",
        "max_concurrency": r"Maximum concurrency for ([\d,]+) tokens per request: ([\d.]+)x",
        "memory_profile": r"(Memory profiling takes .*)",
    }
    facts: dict[str, Any] = {}
    for name, pattern in patterns.items():
        found = re.findall(pattern, text)
        if found:
            facts[name] = found[-1]
    facts["tail"] = text[-4000:]
    return facts


def _write(results: dict[str, Any], out: Path, name: str = "calibration.json") -> None:
    (out / name).write_text(json.dumps(results, indent=1, default=str))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "calibration")))
    parser.add_argument("--budget-seconds", type=float, default=400)
    parser.add_argument("--skip-vllm", action="store_true")
    parser.add_argument("--part", choices=["all", "torch"], default="all")
    args = parser.parse_args()
    deadline = time.monotonic() + args.budget_seconds
    args.out.mkdir(parents=True, exist_ok=True)
    if args.part == "torch":
        part: dict[str, Any] = {}
        torch_measurements(part, args.out)
        return 0
    results: dict[str, Any] = {"environment": environment()}
    print(json.dumps(results["environment"], indent=1), flush=True)
    _write(results, args.out)
    torch_in_child(results, args.out, deadline)
    _write(results, args.out)
    if not args.skip_vllm:
        vllm_measurements(results, args.out, deadline)
    _write(results, args.out)
    print(f"wrote {args.out / 'calibration.json'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
