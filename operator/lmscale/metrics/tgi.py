"""Text Generation Inference's metrics (`tgi_` prefix, from its router).

TGI exports no KV-cache gauge and no time-to-first-token histogram. TTFT is approximated as
the p95 of the queue wait plus the p95 of a prefill batch: both are histograms TGI exports,
and their sum errs on the high side, which is the safe side for scaling up.
"""

from __future__ import annotations

from lmscale.metrics import promql
from lmscale.metrics.source import GaugeEngineSource


class TgiSource(GaugeEngineSource):
    kind = "tgi"
    waiting = ("tgi_queue_size",)
    running = ("tgi_batch_current_size",)
    kv_cache_usage = ()
    queue_histogram = "tgi_request_queue_duration"
    prefill_histogram = "tgi_batch_inference_duration"
    # Each request's mean time per output token, observed when it ends.
    tpot_histograms = ("tgi_request_mean_time_per_token_duration",)
    # The router's histogram of prompt lengths: its sum is a counter of prompt tokens.
    prompt_tokens = ("tgi_request_input_length_sum",)
    # The router's counter of finished requests (no `_total`: TGI names it bare).
    completions = ("tgi_request_success",)

    def ttft_p95(self, ctx: promql.QueryContext) -> str | None:
        queue = promql.histogram_quantile(self.queue_histogram, ctx)
        prefill = promql.histogram_quantile(
            self.prefill_histogram, ctx, matchers='method="prefill"'
        )
        return f"({queue} + {prefill})"
