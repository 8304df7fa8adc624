"""`spec.model`: what to serve, from where, at what precision and context length."""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import Field

from lmscale.api import schema
from lmscale.api.schema import Rule, StrictBool, StrictInt


class Dtype(enum.StrEnum):
    """Weight precision; it decides weight memory and which kernels the engine runs."""

    BFLOAT16 = "bfloat16"
    FLOAT16 = "float16"
    FP8 = "fp8"
    INT4 = "int4"


SOURCE_PATTERN = (
    r"^(hf://[^/\s]+/[^\s]+|pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?/[^\s]*|s3://[^/\s]+/[^\s]*)$"
)


class ModelSource(schema.Schema):
    """Where the engine loads the weights from."""

    uri: Annotated[str, Field(pattern=SOURCE_PATTERN, max_length=1024)] = Field(
        description=(
            "Where the weights live: hf://ORG/NAME (Hugging Face Hub repository), "
            "pvc://CLAIM/PATH (a directory on a PersistentVolumeClaim in the same namespace, "
            "mounted read-only), or s3://BUCKET/PATH (vLLM only, streamed with the Run:ai "
            "model streamer). Without a source the engine downloads `model.name` from the Hub."
        ),
    )


class ModelShape(schema.Schema):
    """An architecture given inline, for a model the catalog does not know."""

    layers: StrictInt = Field(ge=1, le=1024, description="Transformer layers (num_hidden_layers).")
    hidden_size: StrictInt = Field(ge=1, le=1_048_576, description="Hidden size (hidden_size).")
    attention_heads: StrictInt = Field(
        ge=1, le=1024, description="Query attention heads (num_attention_heads)."
    )
    kv_heads: StrictInt = Field(
        ge=1,
        le=1024,
        description=(
            "Key/value heads (num_key_value_heads); equal to attentionHeads without grouped-query "
            "attention. Sets the KV-cache size per token."
        ),
    )
    head_dim: StrictInt | None = Field(
        default=None,
        ge=1,
        le=4096,
        description=(
            "Dimension of one attention head (head_dim); default hiddenSize / attentionHeads."
        ),
    )
    ffn_size: StrictInt = Field(
        ge=1, le=4_194_304, description="Feed-forward inner size (intermediate_size)."
    )
    vocab_size: StrictInt = Field(ge=1, le=16_777_216, description="Vocabulary size (vocab_size).")
    tied_embeddings: StrictBool = Field(
        default=False,
        description="Whether the LM head shares the embedding matrix (tie_word_embeddings).",
    )
    parameters: StrictInt | None = Field(
        default=None,
        ge=1_000_000,
        le=100_000_000_000_000,
        description=(
            "Published total parameter count, e.g. 8030000000 for an 8B model. Optional: "
            "lmscale counts parameters from the shape, and when this is set, reports a "
            "shape whose count is more than 10 percent off (a mistyped field)."
        ),
    )
    max_context_length: StrictInt = Field(
        ge=128,
        le=16_777_216,
        description="Longest context the model supports (max_position_embeddings), in tokens.",
    )

    rules = (
        Rule(
            cel="self.attentionHeads % self.kvHeads == 0",
            message=(
                "model.shape.kvHeads must divide model.shape.attentionHeads "
                "(grouped-query attention shares each KV head among whole groups of query heads)"
            ),
            check=lambda s: s.attention_heads % s.kv_heads == 0,
            field=".kvHeads",
        ),
    )


class Model(schema.Schema):
    """The model to serve."""

    name: str = Field(
        min_length=1,
        max_length=256,
        description=(
            "Model id the engine serves and clients put in the `model` field of OpenAI-style "
            "requests, e.g. meta-llama/Llama-3.1-8B-Instruct (vLLM and SGLang serve under "
            "this name; TGI has no served-name flag: it answers any `model` and reports the "
            "model it loaded). Also the Hugging Face Hub repository downloaded when no "
            "source is given."
        ),
    )
    architecture: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[a-z0-9][-a-z0-9._]*$",
        description=(
            "Catalog key of the architecture, e.g. llama-3.1-8b (`lmscale plan --list` shows "
            "them). Exactly one of architecture and shape is required."
        ),
    )
    shape: ModelShape | None = Field(
        default=None,
        description=(
            "The architecture given inline, for a model the catalog does not know. "
            "Exactly one of architecture and shape is required."
        ),
    )
    dtype: Dtype = Field(
        default=Dtype.BFLOAT16,
        description=(
            "Weight precision: bfloat16, float16, fp8 (quantized at load time) or int4 "
            "(needs pre-quantized AWQ/GPTQ weights). Sets weight memory and kernels."
        ),
    )
    max_context_length: StrictInt | None = Field(
        default=None,
        ge=128,
        le=16_777_216,
        description=(
            "Longest prompt plus output, in tokens, that the engine accepts (its max model "
            "length). Default: the model's own maximum. Shorter contexts leave more GPU "
            "memory for the KV cache, so more concurrent requests per replica."
        ),
    )
    source: ModelSource | None = Field(
        default=None,
        description="Where the weights come from. Default: the Hugging Face Hub repository `name`.",
    )

    rules = (
        Rule(
            cel="has(self.architecture) != has(self.shape)",
            message=(
                "model: set exactly one of model.architecture (a catalog key) "
                "and model.shape (an inline architecture)"
            ),
            check=lambda m: (m.architecture is None) != (m.shape is None),
            reason="FieldValueRequired",
        ),
        Rule(
            cel=(
                "!has(self.shape) || !has(self.maxContextLength) "
                "|| self.maxContextLength <= self.shape.maxContextLength"
            ),
            message=(
                "model.maxContextLength exceeds model.shape.maxContextLength, the longest "
                "context the model supports; lower it"
            ),
            check=lambda m: (
                m.shape is None
                or m.max_context_length is None
                or m.max_context_length <= m.shape.max_context_length
            ),
            field=".maxContextLength",
        ),
    )
