"""Bytes to fetch, the volume to request, and the cold-start estimate."""

from __future__ import annotations

import pytest

from lmscale.planner import plan, storage


def test_cold_start_is_load_time_plus_engine_start() -> None:
    result = storage.storage_plan(10 * 10**9, source="pvc", engine_start_seconds=30)
    assert result.download_bytes == 10 * 10**9 + storage.EXTRA_FILE_BYTES
    assert result.load_seconds == pytest.approx(result.download_bytes / 500e6)
    assert result.cold_start_seconds == pytest.approx(result.load_seconds + 30)


def test_pvc_size_rounds_up_to_whole_gibibytes_with_headroom() -> None:
    result = storage.storage_plan(16_060_522_496)
    assert result.pvc_bytes > result.download_bytes
    assert result.pvc_size == "19Gi"


def test_a_stated_bandwidth_wins() -> None:
    fast = storage.storage_plan(10**10, source="hf", bandwidth_bytes_per_second=2e9)
    assert fast.load_seconds == pytest.approx((10**10 + storage.EXTRA_FILE_BYTES) / 2e9)


@pytest.mark.parametrize(
    ("uri", "scheme"),
    [
        pytest.param(None, "hf", id="unset"),
        pytest.param("hf://meta-llama/Llama-3.1-8B-Instruct", "hf", id="hub"),
        pytest.param("pvc://models/llama", "pvc", id="pvc"),
        pytest.param("s3://bucket/llama", "s3", id="s3"),
    ],
)
def test_source_scheme(uri: str | None, scheme: str) -> None:
    assert storage.source_scheme(uri) == scheme


def test_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="unknown model source scheme 'ftp'"):
        storage.source_scheme("ftp://x/y")


def test_the_plan_carries_the_storage_estimate() -> None:
    hub = plan.plan_replica("llama-3.1-70b", "nvidia-h100-80gb", source="hf")
    disk = plan.plan_replica("llama-3.1-70b", "nvidia-h100-80gb", source="pvc")
    assert disk.cold_start_seconds < hub.cold_start_seconds
    assert hub.to_dict()["storage"]["pvc_size"].endswith("Gi")
