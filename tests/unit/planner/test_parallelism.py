"""Valid tensor-parallel degrees and the smallest one that fits."""

from __future__ import annotations

import pytest

from lmscale.planner import catalog, parallelism, plan


@pytest.mark.parametrize(
    ("key", "degrees"),
    [
        pytest.param("llama-3.1-8b", (1, 2, 4, 8), id="llama-8b"),
        pytest.param("llama-3.2-3b", (1, 2, 4, 8), id="24-heads-8-kv"),
        pytest.param("qwen2.5-7b", (1, 2, 4), id="28-heads-4-kv-not-7"),
        pytest.param("gpt2", (1, 2, 3, 4, 6), id="gpt2-12-heads"),
        pytest.param("gpt2-xl", (1, 5), id="gpt2-xl-25-heads"),
    ],
)
def test_valid_degrees(key: str, degrees: tuple[int, ...]) -> None:
    assert parallelism.valid_tp_degrees(catalog.model(key), catalog.gpu("nvidia-h100-80gb")) \
        == degrees


@pytest.mark.parametrize(
    ("key", "tp", "message"),
    [
        pytest.param("llama-3.1-8b", 16, "exceed the 8", id="beyond-a-node"),
        pytest.param("llama-3.1-8b", 3, "does not divide", id="heads"),
        pytest.param("qwen2.5-7b", 7, "KV heads", id="kv-heads"),
        pytest.param("llama-3.1-8b", 0, "at least 1", id="zero"),
    ],
)
def test_invalid_degrees_say_why(key: str, tp: int, message: str) -> None:
    problem = parallelism.tp_problem(catalog.model(key), catalog.gpu("nvidia-h100-80gb"), tp)
    assert problem is not None and message in problem


@pytest.mark.parametrize(
    ("key", "gpu", "dtype", "expected"),
    [
        pytest.param("llama-3.1-8b", "nvidia-h100-80gb", "bfloat16", 1, id="8b-h100"),
        pytest.param("llama-3.1-8b", "nvidia-l4", "bfloat16", 1, id="8b-l4"),
        pytest.param("llama-3.1-70b", "nvidia-h100-80gb", "bfloat16", 2, id="70b-h100"),
        pytest.param("llama-3.1-70b", "nvidia-h200", "bfloat16", 2, id="70b-h200"),
        pytest.param("llama-3.1-70b", "nvidia-h200", "fp8", 1, id="70b-fp8-h200"),
        pytest.param("llama-3.1-70b", "nvidia-a100-40gb", "bfloat16", 4, id="70b-a100-40"),
        pytest.param("llama-3.1-405b", "nvidia-h200", "bfloat16", 8, id="405b-h200"),
        pytest.param("llama-3.1-405b", "nvidia-h100-80gb", "fp8", 8, id="405b-fp8-h100"),
        pytest.param("mixtral-8x7b", "nvidia-h100-80gb", "bfloat16", 2, id="mixtral-h100"),
    ],
)
def test_smallest_fitting_degree(key: str, gpu: str, dtype: str, expected: int) -> None:
    result = plan.plan_replica(key, gpu, dtype=dtype, context=4096)
    assert result.fits, result.reason
    assert result.gpus_per_replica == expected
