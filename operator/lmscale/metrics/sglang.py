"""SGLang's metrics (`sglang:` prefix, server started with --enable-metrics)."""

from __future__ import annotations

from lmscale.metrics.source import GaugeEngineSource


class SglangSource(GaugeEngineSource):
    kind = "sglang"
    waiting = ("sglang:num_queue_reqs",)
    running = ("sglang:num_running_reqs",)
    kv_cache_usage = ("sglang:token_usage",)  # fraction of the KV-cache token pool in use
    ttft_histogram = "sglang:time_to_first_token_seconds"
    tpot_histograms = ("sglang:inter_token_latency_seconds",)
    prompt_tokens = ("sglang:prompt_tokens_total",)
    completions = ("sglang:num_requests_total",)  # finished requests
