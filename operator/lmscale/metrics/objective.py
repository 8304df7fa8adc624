"""Which bucket of an engine's TTFT histogram the error budget counts against (pure).

An error-budget burn rate needs the share of requests slower than the objective, and a
classic Prometheus histogram only answers that at its bucket bounds. The operator exports,
per model, the `le` of the largest bucket at or under `spec.slo.ttftP95Ms`
(`lmscale_slo_ttft_bucket_info`); the chart's recording rules join the engine's histogram
on it. A bound under the objective counts requests between it and the objective as slow,
which errs on the alerting side. The bounds are each engine's own (vLLM's
`vllm/v1/metrics/loggers.py`, SGLang's `sglang/srt/metrics/collector.py`); TGI exports no
TTFT histogram, so it has no bucket here.
"""

from __future__ import annotations

from prometheus_client.utils import floatToGoString

TTFT_BUCKETS: dict[str, tuple[float, ...]] = {
    "vllm": (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
             2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0),
    "sglang": (0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0,
               80.0, 100.0, 200.0, 400.0),
}  # fmt: skip


def ttft_objective_le(engine: str, objective_seconds: float) -> str | None:
    """The `le` label (as the engine's Python client writes it) of the largest TTFT bucket
    at or under the objective; None when the engine has no TTFT histogram or no such bucket."""
    bounds = [b for b in TTFT_BUCKETS.get(engine, ()) if b <= objective_seconds + 1e-9]
    return floatToGoString(max(bounds)) if bounds else None
