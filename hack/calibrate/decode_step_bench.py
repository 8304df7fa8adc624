#!/usr/bin/env python3
"""Time the GPU kernels of one Llama-3.1-8B decode step and one prefill, in plain torch.

Where vLLM is not installed, this is the closest measurement of the planner's step-time
model: the same layer shapes (32 layers, hidden 4096, 32 query / 8 KV heads of 128, SwiGLU
MLP of 14336, vocabulary 128256), random bf16 weights, a KV cache of `batch` sequences of
`context` tokens, and the whole decode step captured in one CUDA graph (as vLLM runs it).
Attention packs the 4 query heads that share a KV head as 4 query rows (FlashDecoding-style
GQA), so SDPA reads every cached key and value once. It leaves out what an engine adds on
the CPU (scheduling, sampling, input preparation): the planner's `step_overhead_s`.

    python3 hack/calibrate/decode_step_bench.py --out DIR     # writes DIR/decode_step.json

Other model sizes: `--model KEY --shape LAYERS,HIDDEN,HEADS,KV_HEADS,HEAD_DIM,FFN,VOCAB`
(the catalog's fields, `operator/lmscale/planner/data/models.yaml`), e.g. Llama-3.2-1B:
`--model llama-3.2-1b --shape 16,2048,32,8,64,8192,128256`. Commit the JSON as
`docs/calibration/<gpu>-decode-step-<KEY>.json`: the planner's error table picks it up.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

LAYERS, HIDDEN, HEADS, KV_HEADS, HEAD_DIM, FFN, VOCAB = 32, 4096, 32, 8, 128, 14336, 128256
CASES = ((1, 1024), (1, 8192), (16, 1024), (64, 1024), (64, 4096), (128, 2048), (256, 1024),
         (256, 2048), (512, 1024), (32, 512), (8, 256))


def main() -> int:
    import torch
    import torch.nn.functional as F

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    parser.add_argument("--model", default="llama-3.1-8b", help="catalog key of the shape")
    parser.add_argument("--shape", help="LAYERS,HIDDEN,HEADS,KV_HEADS,HEAD_DIM,FFN,VOCAB")
    args = parser.parse_args()
    global LAYERS, HIDDEN, HEADS, KV_HEADS, HEAD_DIM, FFN, VOCAB
    if args.shape:
        LAYERS, HIDDEN, HEADS, KV_HEADS, HEAD_DIM, FFN, VOCAB = (
            int(v) for v in args.shape.split(","))
    torch.manual_seed(0)
    dev, bf16 = "cuda", torch.bfloat16

    def weight(rows: int, cols: int) -> Any:
        return torch.empty(rows, cols, dtype=bf16, device=dev).normal_(std=0.02)

    layers = [{
        "qkv": weight((HEADS + 2 * KV_HEADS) * HEAD_DIM, HIDDEN),
        "o": weight(HIDDEN, HEADS * HEAD_DIM),
        "gate_up": weight(2 * FFN, HIDDEN),
        "down": weight(HIDDEN, FFN),
        "norm1": torch.ones(HIDDEN, dtype=bf16, device=dev),
        "norm2": torch.ones(HIDDEN, dtype=bf16, device=dev),
    } for _ in range(LAYERS)]
    lm_head = weight(VOCAB, HIDDEN)
    weight_bytes = sum(t.numel() * 2 for layer in layers for t in layer.values())
    weight_bytes += lm_head.numel() * 2
    group = HEADS // KV_HEADS
    q_width, kv_width = HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM

    def decode_step(x: Any, caches: list[tuple[Any, Any]]) -> Any:
        batch = x.shape[0]
        for layer, (k_cache, v_cache) in zip(layers, caches, strict=True):
            h = F.rms_norm(x, (HIDDEN,), layer["norm1"])
            qkv = F.linear(h, layer["qkv"])
            q = qkv[:, :q_width].reshape(batch, KV_HEADS, group, HEAD_DIM)
            attn = F.scaled_dot_product_attention(q, k_cache, v_cache)
            x = x + F.linear(attn.reshape(batch, q_width), layer["o"])
            h = F.rms_norm(x, (HIDDEN,), layer["norm2"])
            gate, up = F.linear(h, layer["gate_up"]).chunk(2, dim=-1)
            x = x + F.linear(F.silu(gate) * up, layer["down"])
        return F.linear(x, lm_head)

    def timed(fn: Any, iters: int = 10) -> float:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            fn()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        for _ in range(3):
            graph.replay()
        torch.cuda.synchronize()
        times = []
        for _ in range(iters):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            graph.replay()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        del graph
        return sorted(times)[len(times) // 2]

    results: dict[str, Any] = {"weight_bytes": weight_bytes, "decode": [], "prefill": []}
    for batch, context in CASES:
        began = time.perf_counter()
        try:
            caches = [(torch.empty(batch, KV_HEADS, context, HEAD_DIM, dtype=bf16, device=dev)
                       .normal_(), torch.empty(batch, KV_HEADS, context, HEAD_DIM, dtype=bf16,
                                               device=dev).normal_()) for _ in range(LAYERS)]
            x = torch.randn(batch, HIDDEN, dtype=bf16, device=dev)
            seconds = timed(lambda x=x, caches=caches: decode_step(x, caches))
            kv_bytes = 2 * LAYERS * batch * context * kv_width * 2
            results["decode"].append({
                "batch": batch, "context": context, "seconds": seconds,
                "weight_bytes": weight_bytes, "kv_bytes": kv_bytes,
                "bytes_per_second": (weight_bytes + kv_bytes) / seconds,
            })
            del caches
        except Exception as error:  # noqa: BLE001 - keep the other cases
            results["decode"].append({"batch": batch, "context": context,
                                      "error": repr(error)[:400]})
        torch.cuda.empty_cache()
        print(f"decode b={batch} c={context}: {results['decode'][-1].get('seconds')} "
              f"({time.perf_counter() - began:.1f}s)", flush=True)

    def prefill(x: Any) -> Any:
        tokens = x.shape[0]
        for layer in layers:
            h = F.rms_norm(x, (HIDDEN,), layer["norm1"])
            qkv = F.linear(h, layer["qkv"])
            q = qkv[:, :q_width].view(tokens, HEADS, HEAD_DIM).transpose(0, 1)
            k = qkv[:, q_width:q_width + kv_width].view(tokens, KV_HEADS, HEAD_DIM).transpose(0, 1)
            v = qkv[:, q_width + kv_width:].view(tokens, KV_HEADS, HEAD_DIM).transpose(0, 1)
            k, v = k.repeat_interleave(group, dim=0), v.repeat_interleave(group, dim=0)
            attn = F.scaled_dot_product_attention(
                q.unsqueeze(0), k.unsqueeze(0), v.unsqueeze(0), is_causal=True)[0]
            x = x + F.linear(attn.transpose(0, 1).reshape(tokens, q_width), layer["o"])
            h = F.rms_norm(x, (HIDDEN,), layer["norm2"])
            gate, up = F.linear(h, layer["gate_up"]).chunk(2, dim=-1)
            x = x + F.linear(F.silu(gate) * up, layer["down"])
        return F.linear(x[-1:], lm_head)

    linear_params = LAYERS * (HIDDEN * (q_width + 2 * kv_width) + q_width * HIDDEN
                              + 3 * HIDDEN * FFN)
    for tokens in (512, 2048, 8192, 16384):
        try:
            x = torch.randn(tokens, HIDDEN, dtype=bf16, device=dev)
            seconds = timed(lambda x=x: prefill(x), iters=5)
            flops = 2 * linear_params * tokens + 4 * LAYERS * q_width * tokens * tokens / 2
            results["prefill"].append({"tokens": tokens, "seconds": seconds,
                                       "flops_per_second": flops / seconds})
        except Exception as error:  # noqa: BLE001
            results["prefill"].append({"tokens": tokens, "error": repr(error)[:400]})
        torch.cuda.empty_cache()
        print(f"prefill t={tokens}: {results['prefill'][-1]}", flush=True)
    results["attention"] = []
    for tokens in (2048, 8192, 16384):
        try:
            q, k, v = (torch.randn(1, HEADS, tokens, HEAD_DIM, dtype=bf16, device=dev)
                       for _ in range(3))
            seconds = timed(lambda q=q, k=k, v=v: F.scaled_dot_product_attention(
                q, k, v, is_causal=True), iters=5)
            flops = 4 * HEADS * HEAD_DIM * tokens * tokens / 2
            results["attention"].append({"tokens": tokens, "seconds": seconds,
                                         "flops_per_second": flops / seconds})
        except Exception as error:  # noqa: BLE001
            results["attention"].append({"tokens": tokens, "error": repr(error)[:400]})
        print(f"attention t={tokens}: {results['attention'][-1]}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    results["model"] = args.model
    results["shape"] = [LAYERS, HIDDEN, HEADS, KV_HEADS, HEAD_DIM, FFN, VOCAB]
    (args.out / "decode_step.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
