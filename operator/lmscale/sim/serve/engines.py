"""What each engine kind exports, by its own names: the table the live simulator plays.

The names come from the operator's own metric sources (`lmscale.metrics`), so the
simulator exports exactly the series the operator reads; the unit tests check them against
the metric-name table of the design document. Buckets follow each engine's own source:
vLLM's `vllm/v1/metrics/loggers.py`, SGLang's `sglang/srt/metrics/collector.py`, and TGI's
router (`router/src/server.rs`: 35 geometric buckets from 0.1 ms, factor 1.5, for every
`*_duration` histogram).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from lmscale.metrics.sglang import SglangSource
from lmscale.metrics.tgi import TgiSource
from lmscale.metrics.vllm import VllmSource

VLLM_TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
    2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
SGLANG_TTFT_BUCKETS = (
    0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0, 80.0,
    100.0, 200.0, 400.0,
)  # fmt: skip
# Inter-token latency: vLLM's `vllm:inter_token_latency_seconds`, SGLang's
# `sglang:inter_token_latency_seconds` (one observation per output token).
VLLM_ITL_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
    10.0, 20.0, 40.0, 80.0,
)  # fmt: skip
SGLANG_ITL_BUCKETS = (
    0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.025, 0.030, 0.035, 0.040, 0.060,
    0.080, 0.100, 0.200, 0.400, 0.600, 0.800, 1.0, 2.0, 4.0, 6.0, 8.0,
)  # fmt: skip
TGI_DURATION_BUCKETS = tuple(0.0001 * 1.5**k for k in range(1, 36))
# Prompt lengths (TGI's `tgi_request_input_length`); the operator reads only its sum.
INPUT_LENGTH_BUCKETS = tuple(float(2**k) for k in range(4, 18))

# DCGM exporter (with its Kubernetes pod mapping): percent, one series per GPU of a pod.
DCGM_GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"


@dataclass(frozen=True)
class EngineExport:
    """One engine kind's series names; None where the engine has no such series."""

    kind: str
    waiting: str
    running: str
    kv_cache_usage: str | None
    ttft: str | None  # TTFT histogram
    queue: str | None  # TGI: time waiting in the router's queue (histogram)
    prefill: str | None  # TGI: prefill batch duration (histogram, method="prefill")
    completed: str  # requests finished
    # Prompt tokens: a counter (vLLM, SGLang), or the sum of a prompt-length histogram (TGI).
    prompt_tokens_counter: str | None = None
    input_length: str | None = None
    completed_counter: bool = True  # a typed counter (`_total`); TGI's router names it bare
    ttft_buckets: tuple[float, ...] = ()
    # Time per output token: vLLM and SGLang observe every inter-token gap, TGI each
    # request's mean once (`tgi_request_mean_time_per_token_duration`).
    tpot: str | None = None
    tpot_buckets: tuple[float, ...] = ()
    tpot_per_token: bool = True
    model_label: bool = True  # vLLM and SGLang label their series with the served model


ENGINES = MappingProxyType(
    {
        "vllm": EngineExport(
            kind="vllm",
            waiting=VllmSource.waiting[0],
            running=VllmSource.running[0],
            kv_cache_usage=VllmSource.kv_cache_usage[0],
            ttft=VllmSource.ttft_histogram,
            queue=None,
            prefill=None,
            completed="vllm:request_success",
            prompt_tokens_counter=VllmSource.prompt_tokens[0].removesuffix("_total"),
            ttft_buckets=VLLM_TTFT_BUCKETS,
            tpot=VllmSource.tpot_histograms[0],
            tpot_buckets=VLLM_ITL_BUCKETS,
        ),
        "tgi": EngineExport(
            kind="tgi",
            waiting=TgiSource.waiting[0],
            running=TgiSource.running[0],
            kv_cache_usage=None,
            ttft=None,
            queue=TgiSource.queue_histogram,
            prefill=TgiSource.prefill_histogram,
            completed="tgi_request_success",
            input_length=TgiSource.prompt_tokens[0].removesuffix("_sum"),
            completed_counter=False,
            tpot=TgiSource.tpot_histograms[0],
            tpot_buckets=TGI_DURATION_BUCKETS,
            tpot_per_token=False,
            model_label=False,
        ),
        "sglang": EngineExport(
            kind="sglang",
            waiting=SglangSource.waiting[0],
            running=SglangSource.running[0],
            kv_cache_usage=SglangSource.kv_cache_usage[0],
            ttft=SglangSource.ttft_histogram,
            queue=None,
            prefill=None,
            completed="sglang:num_requests",
            prompt_tokens_counter=SglangSource.prompt_tokens[0].removesuffix("_total"),
            ttft_buckets=SGLANG_TTFT_BUCKETS,
            tpot=SglangSource.tpot_histograms[0],
            tpot_buckets=SGLANG_ITL_BUCKETS,
        ),
    }
)


def export_for(kind: str) -> EngineExport:
    """The names of `kind`; an engine the simulator cannot play is an error, not vLLM."""
    try:
        return ENGINES[kind]
    except KeyError:
        raise ValueError(
            f"sim serve cannot play engine {kind!r}; known: {', '.join(ENGINES)}"
        ) from None
