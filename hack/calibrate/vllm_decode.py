#!/usr/bin/env python3
"""Time a real vLLM engine on dummy weights: start-up, KV-cache size, decode steps, prefill.

Called by gpu_microbench.py in its own process (so its GPU memory is freed when it ends):

    python3 hack/calibrate/vllm_decode.py --model llama-3.1-8b --result FILE

It writes the model's config.json (copied from the Hub's published config) to a temporary
directory and starts vLLM with `load_format="dummy"` and no tokenizer, so nothing is
downloaded. The scheduler limits are those `vllm serve` uses on a >= 70 GiB GPU
(max_num_seqs 1024, max_num_batched_tokens 8192), so the KV size compares with the planner's.

Decode step time is the difference of two runs that differ only in output length, divided by
the extra steps: prefill and start-up costs cancel.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

_LLAMA = {
    "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
    "initializer_range": 0.02, "max_position_embeddings": 131072, "mlp_bias": False,
    "model_type": "llama", "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
    "torch_dtype": "bfloat16", "use_cache": True, "vocab_size": 128256,
}
CONFIGS: dict[str, dict[str, Any]] = {
    "llama-3.1-8b": {
        **_LLAMA, "hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32,
        "num_hidden_layers": 32, "num_key_value_heads": 8, "tie_word_embeddings": False,
        "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    },
    "llama-3.2-1b": {
        **_LLAMA, "hidden_size": 2048, "intermediate_size": 8192, "num_attention_heads": 32,
        "num_hidden_layers": 16, "num_key_value_heads": 8, "head_dim": 64,
        "tie_word_embeddings": True,
        "rope_scaling": {"factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    },
}
MAX_MODEL_LEN = 8192


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=sorted(CONFIGS), required=True)
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--deadline-seconds", type=float, default=300)
    args = parser.parse_args()
    deadline = time.monotonic() + args.deadline_seconds
    result: dict[str, Any] = {"model": args.model, "max_model_len": MAX_MODEL_LEN}

    def save() -> None:
        args.result.write_text(json.dumps(result, indent=1))

    folder = Path(tempfile.mkdtemp(prefix="lmscale-calibrate-"))
    (folder / "config.json").write_text(json.dumps(CONFIGS[args.model]))

    started = time.perf_counter()
    import vllm
    from vllm import LLM, SamplingParams

    result["vllm_version"] = vllm.__version__
    result["import_seconds"] = time.perf_counter() - started
    started = time.perf_counter()
    llm = LLM(
        model=str(folder), skip_tokenizer_init=True, load_format="dummy", dtype="bfloat16",
        max_model_len=MAX_MODEL_LEN, gpu_memory_utilization=0.9, enable_prefix_caching=False,
        max_num_seqs=1024, max_num_batched_tokens=8192, seed=0,
    )
    result["engine_start_seconds"] = time.perf_counter() - started
    save()

    def run(batch: int, prompt: int, output: int) -> float:
        prompts = [{"prompt_token_ids": [(i * 7919 + j * 31) % 30000 + 100 for j in range(prompt)]}
                   for i in range(batch)]
        params = SamplingParams(max_tokens=output, min_tokens=output, ignore_eos=True,
                                temperature=0.0, detokenize=False)
        begun = time.perf_counter()
        llm.generate(prompts, params, use_tqdm=False)
        return time.perf_counter() - begun

    run(4, 64, 16)  # warm-up
    decode = result.setdefault("decode_steps", [])
    plan = [(1, 128, 32, 160), (16, 128, 32, 160), (64, 128, 32, 160), (256, 128, 32, 160),
            (64, 4096, 8, 72), (256, 1024, 8, 72)]
    for batch, prompt, short, long in plan:
        if time.monotonic() > deadline - 20:
            result["stopped"] = "deadline"
            break
        t_short, t_long = run(batch, prompt, short), run(batch, prompt, long)
        decode.append({
            "batch": batch, "prompt_tokens": prompt,
            "mean_context": prompt + (short + long) / 2,
            "step_seconds": (t_long - t_short) / (long - short),
            "short_run_seconds": t_short, "long_run_seconds": t_long,
        })
        save()
    prefill = result.setdefault("prefill", [])
    for batch, prompt in ((16, 2048), (1, 8000), (64, 512)):
        if time.monotonic() > deadline - 10:
            result["stopped"] = "deadline"
            break
        seconds = run(batch, prompt, 1)
        prefill.append({"batch": batch, "prompt_tokens": prompt, "seconds": seconds,
                        "tokens_per_second": batch * prompt / seconds})
        save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
