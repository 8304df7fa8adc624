"""Parameter counts and weight bytes against published figures."""

from __future__ import annotations

import pytest

from lmscale.planner import catalog, weights

# The planner counts parameters from the shape; the model cards publish rounded totals.
PUBLISHED = [
    pytest.param("llama-3.2-1b", 1.23e9, 0.01, id="llama-3.2-1b-1.23B"),
    pytest.param("llama-3.2-3b", 3.21e9, 0.01, id="llama-3.2-3b-3.21B"),
    pytest.param("llama-3.1-8b", 8.03e9, 0.005, id="llama-3.1-8b-8.03B"),
    pytest.param("llama-3.1-70b", 70.6e9, 0.005, id="llama-3.1-70b-70.6B"),
    pytest.param("llama-3.1-405b", 405e9, 0.01, id="llama-3.1-405b-405B"),
    pytest.param("mistral-7b", 7.25e9, 0.005, id="mistral-7b-7.25B"),
    pytest.param("mixtral-8x7b", 46.7e9, 0.005, id="mixtral-46.7B"),
    pytest.param("qwen2.5-7b", 7.61e9, 0.005, id="qwen2.5-7b-7.61B"),
    pytest.param("qwen2.5-14b", 14.7e9, 0.01, id="qwen2.5-14b-14.7B"),
    pytest.param("qwen2.5-32b", 32.5e9, 0.01, id="qwen2.5-32b-32.5B"),
    pytest.param("qwen2.5-72b", 72.7e9, 0.005, id="qwen2.5-72b-72.7B"),
    pytest.param("gpt2", 124e6, 0.005, id="gpt2-124M"),
    pytest.param("gpt2-xl", 1.56e9, 0.005, id="gpt2-xl-1.56B"),
]


@pytest.mark.parametrize(("key", "published", "tolerance"), PUBLISHED)
def test_parameter_count_matches_the_published_figure(
    key: str, published: float, tolerance: float
) -> None:
    assert weights.parameter_count(catalog.model(key)).total == pytest.approx(
        published, rel=tolerance
    )


@pytest.mark.parametrize(
    ("key", "exact"),
    [
        # Hugging Face safetensors metadata (total_size / 2 for bf16 checkpoints).
        pytest.param("llama-3.1-8b", 8_030_261_248, id="llama-3.1-8b"),
        pytest.param("llama-3.1-70b", 70_553_706_496, id="llama-3.1-70b"),
        pytest.param("gpt2", 124_439_808, id="gpt2"),
    ],
)
def test_parameter_count_is_exact_for_checkpoints_counted_by_hand(key: str, exact: int) -> None:
    assert weights.parameter_count(catalog.model(key)).total == exact


def test_mixtral_active_parameters_are_two_experts() -> None:
    count = weights.parameter_count(catalog.model("mixtral-8x7b"))
    assert count.active == pytest.approx(12.9e9, rel=0.005)
    assert count.expert_linear == 32 * 8 * 3 * 4096 * 14336


def test_dense_models_have_no_expert_weights() -> None:
    count = weights.parameter_count(catalog.model("llama-3.1-8b"))
    assert count.active == count.total
    assert count.expert_linear == 0


@pytest.mark.parametrize(
    ("dtype", "gigabytes"),
    [
        pytest.param("bfloat16", 16.06, id="bf16-16.06GB"),
        pytest.param("float16", 16.06, id="fp16-16.06GB"),
        # neuralmagic/Meta-Llama-3.1-8B-Instruct-FP8: 9.08 GB of safetensors.
        pytest.param("fp8", 9.08, id="fp8-9.08GB"),
        # hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4: 5.73 GB.
        pytest.param("int4", 5.73, id="awq-int4-5.73GB"),
    ],
)
def test_llama_8b_checkpoint_sizes(dtype: str, gigabytes: float) -> None:
    size = weights.weight_bytes(catalog.model("llama-3.1-8b"), dtype)
    assert size / 1e9 == pytest.approx(gigabytes, abs=0.02)


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        pytest.param("bf16", "bfloat16", id="bf16"),
        pytest.param("BFloat16", "bfloat16", id="case"),
        pytest.param("fp8", "float8", id="fp8"),
        pytest.param("half", "float16", id="half"),
        pytest.param("awq", "int4", id="awq"),
    ],
)
def test_dtype_spellings(spelling: str, canonical: str) -> None:
    assert weights.canonical_dtype(spelling) == canonical


def test_unknown_dtype_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown dtype 'int3'.*bfloat16"):
        weights.canonical_dtype("int3")
