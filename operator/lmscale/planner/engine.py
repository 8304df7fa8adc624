"""The serving engine's scheduler limits, as vLLM picks them when the user sets none.

vLLM's `EngineArgs.get_batch_defaults` (vllm/engine/arg_utils.py, v0.9 to v0.11) gives the
OpenAI server `max_num_seqs=1024` and `max_num_batched_tokens=8192` on GPUs with at least
70 GiB that are not A100s, and 256 / 2048 everywhere else (an A100 regressed with the larger
budget, vLLM PR #17885). The token budget is the chunked-prefill chunk: it sets the
activation peak of the memory profile and how many prompt tokens one step prefills.
"""

from __future__ import annotations

import dataclasses

from lmscale.planner import catalog

LARGE_GPU_BYTES = 70 * catalog.GIB


@dataclasses.dataclass(frozen=True)
class SchedulerLimits:
    max_num_seqs: int
    max_num_batched_tokens: int


def default_limits(gpu: catalog.GpuType) -> SchedulerLimits:
    """vLLM's defaults for `vllm serve` on this GPU type."""
    large = gpu.memory_bytes >= LARGE_GPU_BYTES and "a100" not in gpu.key.lower()
    if large:
        return SchedulerLimits(max_num_seqs=1024, max_num_batched_tokens=8192)
    return SchedulerLimits(max_num_seqs=256, max_num_batched_tokens=2048)
