"""A step model with round numbers, so engine timings can be computed by hand."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LinearStep:
    """step = fixed + per prompt token + per decoding sequence + per cached token."""

    fixed: float = 0.01
    per_prompt_token: float = 0.001
    per_sequence: float = 0.0
    per_cached_token: float = 0.0
    kv_capacity_tokens: int = 100_000
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 2048
    cold_start_seconds: float = 120.0
    gpus: int = 1
    cost_per_hour: float = 2.0

    def step_seconds(self, *, prefill_tokens: int, decode_seqs: int, kv_tokens: int) -> float:
        if prefill_tokens + decode_seqs <= 0:
            return 0.0
        return (
            self.fixed
            + prefill_tokens * self.per_prompt_token
            + decode_seqs * self.per_sequence
            + kv_tokens * self.per_cached_token
        )
