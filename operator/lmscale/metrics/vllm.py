"""vLLM's metrics (`vllm:` prefix), as its OpenAI-compatible server exports them."""

from __future__ import annotations

from lmscale.metrics.source import GaugeEngineSource


class VllmSource(GaugeEngineSource):
    kind = "vllm"
    waiting = ("vllm:num_requests_waiting",)
    running = ("vllm:num_requests_running",)
    # Renamed in vLLM v0.10 (V1 engine); older servers still export the first name below.
    kv_cache_usage = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
    ttft_histogram = "vllm:time_to_first_token_seconds"
    # v0.11 renamed the inter-token histogram and still exports the old name (same samples).
    tpot_histograms = ("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds")
    prompt_tokens = ("vllm:prompt_tokens_total",)
    completions = ("vllm:request_success_total",)  # finished, by finish reason
