"""KV-cache bytes per token, computed by hand for grouped-query models."""

from __future__ import annotations

import pytest

from lmscale.planner import catalog, kvcache

# 2 (K and V) x layers x KV heads x head_dim x bytes per element.
BY_HAND = [
    pytest.param("llama-3.1-8b", "bfloat16", 2 * 32 * 8 * 128 * 2, id="llama-3.1-8b-131072"),
    pytest.param("llama-3.1-70b", "bfloat16", 2 * 80 * 8 * 128 * 2, id="llama-3.1-70b-327680"),
    pytest.param("llama-3.1-405b", "bfloat16", 2 * 126 * 8 * 128 * 2, id="llama-405b-516096"),
    pytest.param("llama-3.2-1b", "bfloat16", 2 * 16 * 8 * 64 * 2, id="llama-3.2-1b-32768"),
    pytest.param("qwen2.5-7b", "bfloat16", 2 * 28 * 4 * 128 * 2, id="qwen2.5-7b-57344"),
    pytest.param("mixtral-8x7b", "bfloat16", 2 * 32 * 8 * 128 * 2, id="mixtral-131072"),
    pytest.param("gpt2", "float16", 2 * 12 * 12 * 64 * 2, id="gpt2-mha-36864"),
    pytest.param("llama-3.1-8b", "fp8", 2 * 32 * 8 * 128 * 1, id="llama-3.1-8b-fp8-65536"),
]


@pytest.mark.parametrize(("key", "kv_dtype", "expected"), BY_HAND)
def test_kv_bytes_per_token(key: str, kv_dtype: str, expected: int) -> None:
    assert kvcache.kv_bytes_per_token(catalog.model(key), kv_dtype) == expected


@pytest.mark.parametrize(
    ("key", "tp", "heads"),
    [
        pytest.param("llama-3.1-8b", 2, 4, id="split"),
        pytest.param("llama-3.1-8b", 8, 1, id="one-each"),
        pytest.param("qwen2.5-7b", 8, 1, id="replicated-when-tp-exceeds-heads"),
        pytest.param("gpt2", 4, 3, id="mha"),
    ],
)
def test_kv_heads_per_gpu(key: str, tp: int, heads: int) -> None:
    model = catalog.model(key)
    assert kvcache.kv_heads_per_gpu(model, tp) == heads
    per_gpu = kvcache.kv_bytes_per_token_per_gpu(model, "bfloat16", tp)
    assert per_gpu == 2 * model.layers * heads * model.head_dim * 2


def test_capacity_is_whole_blocks() -> None:
    assert kvcache.capacity_tokens(16 * 1000 + 15, 1) == 16 * 1000
    assert kvcache.capacity_tokens(-5, 100) == 0


@pytest.mark.parametrize(
    ("capacity", "context", "cap", "expected"),
    [
        pytest.param(16_000, 1000, 256, 15, id="blocks-round-up-per-sequence"),
        pytest.param(16_000, 1008, 256, 15, id="exact-blocks"),
        pytest.param(1_000_000, 100, 256, 256, id="engine-cap"),
        pytest.param(100, 4096, 256, 0, id="none-fit"),
    ],
)
def test_concurrent_sequences(capacity: int, context: int, cap: int, expected: int) -> None:
    assert kvcache.concurrent_sequences(capacity, context, cap) == expected


def test_a_kv_cache_cannot_be_int4() -> None:
    with pytest.raises(ValueError, match="KV cache cannot be stored as int4"):
        kvcache.kv_bytes_per_token(catalog.model("gpt2"), "int4")
