"""KV-cache size per token, capacity in tokens and concurrent sequences.

Per token, every layer stores one key and one value vector per KV head:
`2 * layers * kv_heads * head_dim * element_bytes` (grouped-query attention keeps only
`kv_heads` of them, Ainslie et al. 2023). Llama-3.1-8B in bf16: 2*32*8*128*2 = 131072 bytes.

Under tensor parallelism vLLM gives each GPU `kv_heads / tp` heads; when tp exceeds kv_heads
each GPU keeps a replica of one head (vLLM `get_num_kv_heads`:
`max(1, total_num_kv_heads // tensor_parallel_size)`). The cache is paged in blocks of 16
tokens (PagedAttention, Kwon et al. SOSP 2023), so capacity rounds down to whole blocks.
"""

from __future__ import annotations

from lmscale.planner import catalog, weights

BLOCK_TOKENS = 16


def element_bytes(kv_dtype: str) -> int:
    """KV-cache element size: 16-bit, or 1 byte for an fp8 cache (`--kv-cache-dtype fp8`)."""
    name = weights.canonical_dtype(kv_dtype)
    if name not in weights.ELEMENT_BYTES:
        raise ValueError(f"a KV cache cannot be stored as {kv_dtype}; use bfloat16 or float8")
    return weights.ELEMENT_BYTES[name]


def kv_bytes_per_token(model: catalog.ModelArchitecture, kv_dtype: str = "bfloat16") -> int:
    """KV bytes one token occupies across the whole replica (all layers, all KV heads)."""
    return 2 * model.layers * model.kv_heads * model.head_dim * element_bytes(kv_dtype)


def kv_heads_per_gpu(model: catalog.ModelArchitecture, tp: int) -> int:
    """KV heads each GPU stores at tensor-parallel degree `tp` (replicated when tp > heads)."""
    return max(1, model.kv_heads // tp)


def kv_bytes_per_token_per_gpu(
    model: catalog.ModelArchitecture, kv_dtype: str, tp: int
) -> int:
    """KV bytes one token occupies on each GPU of a tp-way replica."""
    heads = kv_heads_per_gpu(model, tp)
    return 2 * model.layers * heads * model.head_dim * element_bytes(kv_dtype)


def capacity_tokens(kv_budget_bytes_per_gpu: int, bytes_per_token_per_gpu: int) -> int:
    """Tokens the cache holds, in whole 16-token blocks; never negative."""
    if kv_budget_bytes_per_gpu <= 0:
        return 0
    blocks = kv_budget_bytes_per_gpu // (bytes_per_token_per_gpu * BLOCK_TOKENS)
    return int(blocks * BLOCK_TOKENS)


def concurrent_sequences(capacity: int, context: int, max_num_seqs: int) -> int:
    """Sequences of `context` tokens that run at once: whole blocks each, capped by the engine.

    A sequence holds ceil(context / 16) blocks, so short contexts round up.
    """
    blocks_each = -(-context // BLOCK_TOKENS)
    return int(min(capacity // (blocks_each * BLOCK_TOKENS), max_num_seqs))
