"""plan_replica: the contract the CLI, the reconciler and status.capacityPlan rely on."""

from __future__ import annotations

import json
import math

import pytest

from lmscale.planner import catalog, performance, plan

CONTRACT_KEYS = {
    "weights_bytes", "kv_bytes_per_token", "gpus_per_replica", "max_concurrent_sequences",
    "decode_step_seconds", "decode_tokens_per_second", "prefill_tokens_per_second", "fits",
    "reason",
}


def test_the_issue_example() -> None:
    result = plan.plan_replica("llama-3.1-8b", "nvidia-h100-80gb", context=4096, batch=64)
    data = result.to_dict()
    assert set(data) >= CONTRACT_KEYS
    assert json.loads(json.dumps(data)) == data  # plain JSON values only
    assert data["fits"] is True and data["reason"] is None
    assert data["weights_bytes"] == 2 * 8_030_261_248
    assert data["kv_bytes_per_token"] == 131072
    assert data["gpus_per_replica"] == 1
    assert data["batch"] == 64
    assert data["decode_tokens_per_second"] == pytest.approx(64 / data["decode_step_seconds"])
    # 15 GiB of weights plus 64 x 4096 x 128 KiB of KV at ~2.8 TB/s: about 20 ms.
    assert 0.012 < data["decode_step_seconds"] < 0.03
    assert data["max_concurrent_sequences"] >= 64
    assert data["gpu_product_label"] == "NVIDIA-H100-80GB-HBM3"


def test_the_decode_figures_match_the_performance_model() -> None:
    result = plan.plan_replica("llama-3.1-8b", "nvidia-h200", context=2048, batch=32)
    perf = performance.replica_performance(result)
    assert result.decode_step_seconds == perf.decode_step_seconds(32, 2048)
    assert result.prefill_seconds == perf.prefill_seconds(2048)
    assert perf.kv_capacity_tokens == result.kv_capacity_tokens
    assert perf.cost_per_hour == result.cost_per_hour == catalog.gpu("nvidia-h200").price_per_hour
    assert perf.cold_start_seconds == result.cold_start_seconds
    assert perf.gpus == 1


def test_default_batch_is_the_most_that_fit() -> None:
    result = plan.plan_replica("llama-3.1-8b", "nvidia-l4", context=4096)
    assert result.batch == result.max_concurrent_sequences


@pytest.mark.parametrize(
    ("kwargs", "needles"),
    [
        pytest.param(dict(model="llama-3.1-405b", gpu="nvidia-h100-80gb"),
                     ["needs", "GiB per GPU", "weights 94.5 GiB", "has 71.", "usable",
                      "8 GPUs per replica, the most one nvidia-h100-80gb node allows"],
                     id="405b-on-h100"),
        pytest.param(dict(model="llama-3.1-70b", gpu="nvidia-h100-80gb", gpus_per_replica=1),
                     ["needs", "weights 131.4 GiB", "at 1 GPUs per replica"], id="70b-one-gpu"),
        pytest.param(dict(model="llama-3.1-8b", gpu="nvidia-t4"),
                     ["cannot run bfloat16", "float16"], id="t4-bf16"),
        pytest.param(dict(model="gpt2", gpu="nvidia-l4", context=4096),
                     ["exceeds gpt2's maximum of 1024"], id="context"),
        pytest.param(dict(model="qwen2.5-7b", gpu="nvidia-l4", gpus_per_replica=7),
                     ["KV heads"], id="bad-degree"),
        pytest.param(dict(model="llama-3.1-8b", gpu="nvidia-l4", context=8192, batch=64,
                          gpus_per_replica=1),
                     ["KV cache for 64 sequence(s) of 8192 tokens"], id="batch-too-big"),
    ],
)
def test_impossible_fits_say_why(kwargs: dict, needles: list[str]) -> None:
    result = plan.plan_replica(kwargs.pop("model"), kwargs.pop("gpu"), **kwargs)
    assert not result.fits
    assert result.reason is not None
    for needle in needles:
        assert needle in result.reason
    data = result.to_dict()
    assert data["fits"] is False and data["reason"] == result.reason
    assert data["decode_step_seconds"] is None
    assert data["max_concurrent_sequences"] == 0
    with pytest.raises(ValueError, match="does not fit"):
        performance.replica_performance(result)


def test_t4_runs_float16() -> None:
    result = plan.plan_replica("llama-3.2-1b", "nvidia-t4", dtype="float16", context=4096)
    assert result.fits and result.kv_cache_dtype == "float16"


def test_batch_beyond_the_engine_cap_is_noted() -> None:
    result = plan.plan_replica("llama-3.2-1b", "nvidia-l4", context=256, batch=400)
    assert result.fits
    assert any("max_num_seqs" in note for note in result.notes)


def test_price_override() -> None:
    result = plan.plan_replica("llama-3.1-70b", "nvidia-h100-80gb", price_per_hour=2.0)
    assert result.cost_per_hour == 2.0 * result.gpus_per_replica


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(dict(context=0), "context", id="context"),
        pytest.param(dict(batch=0), "batch", id="batch"),
        pytest.param(dict(memory_fraction=1.5), "memory fraction", id="fraction"),
        pytest.param(dict(dtype="int3"), "unknown dtype", id="dtype"),
        pytest.param(dict(source="ftp"), "source", id="source"),
    ],
)
def test_bad_input_raises(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan.plan_replica("llama-3.1-8b", "nvidia-h100-80gb", **kwargs)


def test_every_catalog_model_fits_somewhere() -> None:
    for model in catalog.models():
        context = min(4096, model.max_context)
        result = plan.plan_replica(model, "nvidia-h200", context=context)
        assert result.fits, result.reason
        assert math.isfinite(result.decode_step_seconds or math.inf)
