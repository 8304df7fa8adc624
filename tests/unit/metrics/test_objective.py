"""The TTFT bucket the error budget counts against, per engine."""

from __future__ import annotations

import pytest

from lmscale.metrics.objective import TTFT_BUCKETS, ttft_objective_le
from lmscale.sim.serve import engines


@pytest.mark.parametrize(("engine", "seconds", "le"), [
    pytest.param("vllm", 0.5, "0.5", id="on-a-bound"),
    pytest.param("vllm", 1.2, "1.0", id="between-bounds-rounds-down"),
    pytest.param("vllm", 10.0, "10.0", id="whole-seconds-as-python-writes-them"),
    pytest.param("sglang", 0.35, "0.2", id="sglang"),
    pytest.param("sglang", 0.05, None, id="under-the-first-bound"),
    pytest.param("tgi", 1.0, None, id="tgi-has-no-ttft-histogram"),
])
def test_objective_bucket(engine: str, seconds: float, le: str | None) -> None:
    assert ttft_objective_le(engine, seconds) == le


def test_bounds_are_the_ones_the_engines_export() -> None:
    assert TTFT_BUCKETS["vllm"] == engines.VLLM_TTFT_BUCKETS
    assert TTFT_BUCKETS["sglang"] == engines.SGLANG_TTFT_BUCKETS
