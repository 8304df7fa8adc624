"""The catalogs: every model the issue names, the GPU table of the design, lookups and errors."""

from __future__ import annotations

import pytest

from lmscale.planner import catalog

ISSUE_MODELS = (
    "llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b",
    "mistral-7b", "mixtral-8x7b", "qwen2.5-7b", "qwen2.5-14b", "qwen2.5-32b", "qwen2.5-72b",
    "gpt2", "gpt2-xl",
)


@pytest.mark.parametrize("key", [pytest.param(k, id=k) for k in ISSUE_MODELS])
def test_every_issue_model_is_in_the_catalog_with_a_source(key: str) -> None:
    model = catalog.model(key)
    assert model.source.startswith("https://huggingface.co/")
    assert model.published_parameters


# design.md's table: key, node label, memory (GB as marketed), bandwidth TB/s, bf16 TFLOP/s.
DESIGN_GPUS = [
    pytest.param("nvidia-h200", "NVIDIA-H200", 141, 4.8, 989, id="h200"),
    pytest.param("nvidia-h100-80gb", "NVIDIA-H100-80GB-HBM3", 80, 3.35, 989, id="h100"),
    pytest.param("nvidia-a100-80gb", "NVIDIA-A100-SXM4-80GB", 80, 2.04, 312, id="a100-80"),
    pytest.param("nvidia-a100-40gb", "NVIDIA-A100-SXM4-40GB", 40, 1.555, 312, id="a100-40"),
    pytest.param("nvidia-l40s", "NVIDIA-L40S", 48, 0.864, 362, id="l40s"),
    pytest.param("nvidia-l4", "NVIDIA-L4", 24, 0.3, 121, id="l4"),
    pytest.param("nvidia-a10g", "NVIDIA-A10G", 24, 0.6, 70, id="a10g"),
    pytest.param("nvidia-t4", "Tesla-T4", 16, 0.32, 65, id="t4-fp16"),
]


@pytest.mark.parametrize(("key", "label", "memory_gb", "bandwidth_tbps", "tflops"), DESIGN_GPUS)
def test_gpu_table_matches_the_design(
    key: str, label: str, memory_gb: int, bandwidth_tbps: float, tflops: float
) -> None:
    gpu = catalog.gpu(key)
    assert gpu.product_label == label
    # Marketed "GB" sit between GiB and GB of what the device reports.
    assert memory_gb * 0.93e9 < gpu.memory_bytes < memory_gb * 1.1e9
    assert gpu.bandwidth_gbps == pytest.approx(bandwidth_tbps * 1000, rel=0.01)
    assert (gpu.bf16_tflops or gpu.fp16_tflops) == pytest.approx(tflops)
    assert gpu.gpus_per_node == 8
    assert gpu.price_per_hour > 0


def test_t4_has_no_bfloat16() -> None:
    assert catalog.gpu("nvidia-t4").bf16_tflops == 0
    assert "bfloat16" not in catalog.gpu("nvidia-t4").supported_dtypes


@pytest.mark.parametrize(
    ("kind", "key", "expected"),
    [
        pytest.param("model", "llama-3.1-8", "llama-3.1-8b", id="model-typo"),
        pytest.param("model", "qwen2.5-72", "qwen2.5-72b", id="model-missing-suffix"),
        pytest.param("gpu", "nvidia-h100", "nvidia-h100-80gb", id="gpu-short"),
        pytest.param("gpu", "nvidia-a100-80g", "nvidia-a100-80gb", id="gpu-typo"),
    ],
)
def test_unknown_keys_name_the_closest(kind: str, key: str, expected: str) -> None:
    lookup = catalog.model if kind == "model" else catalog.gpu
    with pytest.raises(catalog.UnknownKeyError, match=expected) as error:
        lookup(key)
    assert expected in error.value.close_matches
    assert isinstance(error.value, ValueError)


def test_unknown_key_with_nothing_close_lists_the_known_keys() -> None:
    with pytest.raises(catalog.UnknownKeyError, match="known: .*gpt2"):
        catalog.model("zzzzzz")


def test_a_user_entry_overrides_one_field_and_adds_models() -> None:
    extended = catalog.default().extended({
        "gpus": {"nvidia-h100-80gb": {"price_per_hour": 2.1}},
        "models": {"tiny": {"layers": 2, "hidden_size": 64, "attention_heads": 4,
                            "kv_heads": 2, "head_dim": 16, "intermediate_size": 128,
                            "vocab_size": 1000, "max_context": 2048}},
    })
    assert extended.gpu("nvidia-h100-80gb").price_per_hour == 2.1
    assert extended.gpu("nvidia-h100-80gb").memory_mib == catalog.gpu("nvidia-h100-80gb").memory_mib
    assert extended.model("tiny").kv_heads == 2
    assert catalog.gpu("nvidia-h100-80gb").price_per_hour != 2.1  # the default is untouched


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({"gpu": {}}, "unknown sections", id="section-name"),
        pytest.param({"models": {"x": {"layers": 1}}}, "model 'x'", id="missing-fields"),
        pytest.param({"models": {"llama-3.1-8b": {"layers": "many"}}}, "layers", id="bad-int"),
        pytest.param({"models": {"llama-3.1-8b": {"kv_heads": 5}}}, "multiple of kv_heads",
                     id="heads-not-grouped"),
        pytest.param({"gpus": {"nvidia-l4": {"colour": "green"}}}, "unknown fields",
                     id="unknown-field"),
        pytest.param({"gpus": {"nvidia-l4": 3}}, "must be a mapping", id="not-a-mapping"),
    ],
)
def test_bad_catalog_entries_say_what_is_wrong(data: dict, message: str) -> None:
    with pytest.raises(catalog.CatalogError, match=message):
        catalog.default().extended(data)
