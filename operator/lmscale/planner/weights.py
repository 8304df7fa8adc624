"""Parameter counts and weight bytes by dtype.

The count is computed from the architecture rather than read from the model card, so a user's
own `shape:` works too; the tests check it against the published counts.

Weight bytes follow how the quantised checkpoints vLLM serves are laid out:
- bfloat16 / float16: 2 bytes for every parameter.
- float8 (e.g. the llm-compressor / Neural Magic "-FP8" checkpoints): 1 byte per weight of the
  transformer blocks' linear layers plus a per-channel scale; embeddings, the LM head and the
  norms stay 16-bit. Llama-3.1-8B-Instruct-FP8 is 9.08 GB on the Hub, which this reproduces.
- int4 (AWQ / GPTQ, group size 128): half a byte per linear weight plus, per group of 128,
  a 16-bit scale and a 4-bit zero point, i.e. 0.5 + 2.5/128 bytes; the rest stays 16-bit
  (hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4 is 5.73 GB).
"""

from __future__ import annotations

import dataclasses

from lmscale.planner import catalog

# Accepted spellings, mapped to the planner's canonical names.
DTYPE_ALIASES = {
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "fp16": "float16", "half": "float16",
    "float8": "float8", "fp8": "float8", "float8_e4m3fn": "float8",
    "int4": "int4", "awq": "int4", "gptq": "int4",
}
HIGH_PRECISION_BYTES = 2.0
INT4_GROUP_SIZE = 128
LINEAR_BYTES = {
    "bfloat16": 2.0,
    "float16": 2.0,
    "float8": 1.0,
    # packed nibble + (fp16 scale + 4-bit zero) per group of 128 weights
    "int4": 0.5 + 2.5 / INT4_GROUP_SIZE,
}
# Element size of activations and of the KV cache by its dtype.
ELEMENT_BYTES = {"bfloat16": 2, "float16": 2, "float8": 1}


def canonical_dtype(dtype: str) -> str:
    """The planner's name for a dtype spelling; unknown spellings raise with the choices."""
    try:
        return DTYPE_ALIASES[dtype.lower()]
    except KeyError:
        raise ValueError(
            f"unknown dtype {dtype!r}; choose one of {', '.join(sorted(set(DTYPE_ALIASES)))}"
        ) from None


@dataclasses.dataclass(frozen=True)
class ParameterCount:
    """Parameters split by how quantisation treats them."""

    linear: int  # transformer-block linear weights (all experts): what fp8/int4 shrink
    other: int  # embeddings, LM head, norms, biases, router: kept 16-bit
    active_linear: int  # linear weights one token touches (MoE: only its routed experts)
    expert_linear: int  # linear weights of all routed experts (0 for dense models)

    @property
    def total(self) -> int:
        return self.linear + self.other

    @property
    def active(self) -> int:
        return self.active_linear + self.other


def _mlp_weights(model: catalog.ModelArchitecture) -> int:
    matrices = 3 if model.mlp == "gated" else 2  # SwiGLU gate+up+down, or GPT-2 up+down
    return matrices * model.hidden_size * model.intermediate_size


def parameter_count(model: catalog.ModelArchitecture) -> ParameterCount:
    """Parameters of a decoder-only transformer, layer by layer.

    Attention: q and o are hidden x (heads*head_dim); k and v are hidden x (kv_heads*head_dim)
    (grouped-query attention, Ainslie et al. 2023). MLP: 3 matrices when gated (SwiGLU,
    Shazeer 2020), 2 for GPT-2. MoE: `experts` copies of the MLP plus a hidden x experts router
    (Mixtral, Jiang et al. 2024).
    """
    h, q_width = model.hidden_size, model.attention_heads * model.head_dim
    kv_width = model.kv_heads * model.head_dim
    attention = 2 * h * q_width + 2 * h * kv_width
    mlp = _mlp_weights(model)
    layer_linear = attention + model.experts * mlp
    layer_active = attention + model.experts_per_token * mlp

    norm_size = h * (2 if model.norm == "layer" else 1)
    layer_other = 2 * norm_size
    if model.qkv_bias or model.linear_bias:
        layer_other += q_width + 2 * kv_width
    if model.linear_bias:
        layer_other += h + model.intermediate_size + h  # o-proj, mlp up, mlp down biases
    if model.is_moe:
        layer_other += h * model.experts

    embeddings = model.vocab_size * h * (1 if model.tied_embeddings else 2)
    positions = model.max_context * h if model.learned_positions else 0
    other = model.layers * layer_other + embeddings + positions + norm_size
    expert_linear = model.layers * model.experts * mlp if model.is_moe else 0
    return ParameterCount(
        linear=model.layers * layer_linear,
        other=other,
        active_linear=model.layers * layer_active,
        expert_linear=expert_linear,
    )


def bytes_per_linear_weight(dtype: str) -> float:
    return LINEAR_BYTES[canonical_dtype(dtype)]


def weight_bytes(model: catalog.ModelArchitecture, dtype: str) -> int:
    """Bytes of the whole checkpoint in `dtype` (all experts of an MoE)."""
    count = parameter_count(model)
    linear = count.linear * bytes_per_linear_weight(dtype)
    return int(linear + count.other * HIGH_PRECISION_BYTES)


def expert_weight_bytes(model: catalog.ModelArchitecture, dtype: str) -> int:
    """Bytes of the routed experts alone: the part a decode step reads only partly."""
    return int(parameter_count(model).expert_linear * bytes_per_linear_weight(dtype))


def unread_bytes(model: catalog.ModelArchitecture) -> int:
    """Weights a forward step gathers a few rows of instead of streaming: the input embedding
    table when the LM head has its own copy, and learned position embeddings."""
    table = 0 if model.tied_embeddings else model.vocab_size * model.hidden_size
    positions = model.max_context * model.hidden_size if model.learned_positions else 0
    return int((table + positions) * HIGH_PRECISION_BYTES)
