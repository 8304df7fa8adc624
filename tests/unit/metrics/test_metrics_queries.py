"""Query text: one per metric for all deployments, per-engine names, settings' label names."""

from __future__ import annotations

import pytest

from lmscale.metrics import promql, queries, registry
from lmscale.metrics.results import Metric
from lmscale.settings import MetricsSettings

CTX = promql.QueryContext()


def test_one_query_per_metric_for_all_engines() -> None:
    built = queries.build_queries(registry.kinds(), CTX)

    assert set(built) == set(Metric)
    assert all(text is not None for text in built.values())


def test_query_text_names_no_deployment() -> None:
    # The text depends on engines and settings only, never on which resources exist.
    assert queries.build_queries(["vllm"], CTX) == queries.build_queries(["vllm", "vllm"], CTX)


@pytest.mark.parametrize(
    ("metric", "needles"),
    [
        pytest.param(
            Metric.WAITING,
            ["vllm:num_requests_waiting", "tgi_queue_size", "sglang:num_queue_reqs"],
            id="waiting",
        ),
        pytest.param(
            Metric.RUNNING,
            ["vllm:num_requests_running", "tgi_batch_current_size", "sglang:num_running_reqs"],
            id="running",
        ),
        pytest.param(
            Metric.KV_CACHE_USAGE,
            ["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "sglang:token_usage"],
            id="kv-cache-with-vllm-fallback",
        ),
        pytest.param(
            Metric.TTFT_P95,
            [
                "histogram_quantile(0.95, sum by (le, namespace, lmscale_dev_deployment)",
                "rate(vllm:time_to_first_token_seconds_bucket{",
                "rate(sglang:time_to_first_token_seconds_bucket{",
                "tgi_request_queue_duration_bucket",
                'tgi_batch_inference_duration_bucket{lmscale_dev_deployment!="", method="prefill"}',
            ],
            id="ttft-from-histograms",
        ),
        pytest.param(
            Metric.TPOT_P95,
            [
                "histogram_quantile(0.95, sum by (le, namespace, lmscale_dev_deployment)",
                "rate(vllm:inter_token_latency_seconds_bucket{",
                "rate(vllm:time_per_output_token_seconds_bucket{",
                "rate(sglang:inter_token_latency_seconds_bucket{",
                "rate(tgi_request_mean_time_per_token_duration_bucket{",
            ],
            id="tpot-from-inter-token-histograms-with-vllm-fallback",
        ),
        pytest.param(
            Metric.GPU_UTILIZATION,
            [
                'DCGM_FI_DEV_GPU_UTIL{namespace!="", pod!=""}',
                "on (namespace, pod) group_left (lmscale_dev_deployment)",
                ") / 100",
            ],
            id="gpu-joined-by-pod",
        ),
        pytest.param(
            Metric.PROMPT_TOKENS_RATE,
            [
                "sum by (namespace, lmscale_dev_deployment) ((rate(vllm:prompt_tokens_total{",
                "rate(sglang:prompt_tokens_total{",
                "rate(tgi_request_input_length_sum{",
                "}[60s])",
            ],
            id="prompt-tokens-rate-from-counters",
        ),
        pytest.param(
            Metric.COMPLETIONS_RATE,
            [
                "sum by (namespace, lmscale_dev_deployment) ((rate(vllm:request_success_total{",
                "rate(sglang:num_requests_total{",
                "rate(tgi_request_success{",
                "}[60s])",
            ],
            id="completions-rate-from-counters",
        ),
        pytest.param(
            Metric.REPORTING_REPLICAS,
            [
                "count by (namespace, lmscale_dev_deployment) ((vllm:num_requests_running{",
                "count by (namespace, lmscale_dev_deployment) ((tgi_batch_current_size{",
                "count by (namespace, lmscale_dev_deployment) ((sglang:num_running_reqs{",
            ],
            id="reporting-pods",
        ),
    ],
)
def test_metric_names_per_engine(metric: Metric, needles: list[str]) -> None:
    text = queries.build_queries(registry.kinds(), CTX)[metric]

    assert text is not None
    for needle in needles:
        assert needle in text


def test_every_engine_answer_is_tagged_with_its_kind() -> None:
    text = queries.build_queries(registry.kinds(), CTX)[Metric.WAITING]

    assert text is not None
    for kind in registry.kinds():
        assert f'"{promql.ENGINE_LABEL}", "{kind}"' in text


@pytest.mark.parametrize(
    ("engines", "absent"),
    [
        pytest.param(["tgi"], {Metric.KV_CACHE_USAGE}, id="tgi-has-no-kv-cache-gauge"),
        pytest.param(["vllm"], set(), id="vllm-has-everything"),
        pytest.param([], set(Metric), id="no-engines-no-queries"),
    ],
)
def test_metrics_no_engine_exports_are_not_queried(engines: list[str], absent: set[Metric]) -> None:
    built = queries.build_queries(engines, CTX)

    assert {m for m, text in built.items() if text is None} == absent


def test_only_engines_in_use_are_queried() -> None:
    text = queries.build_queries(["sglang"], CTX)[Metric.WAITING]

    assert text is not None and "vllm" not in text and "tgi" not in text


def test_label_names_come_from_settings() -> None:
    settings = MetricsSettings(
        namespace_label="kubernetes_namespace",
        pod_label="kubernetes_pod_name",
        deployment_label="label_lmscale_dev_deployment",
        max_age_seconds=30,
    )
    ctx = promql.QueryContext.from_settings(settings)

    text = queries.build_queries(["vllm"], ctx)[Metric.GPU_UTILIZATION]

    assert text is not None
    assert "avg by (kubernetes_namespace, label_lmscale_dev_deployment)" in text
    assert "on (kubernetes_namespace, kubernetes_pod_name)" in text
    assert "<= 30)" in text
    assert "namespace!=" not in text.replace("kubernetes_namespace!=", "")


def test_staleness_is_filtered_per_series_in_the_query() -> None:
    text = queries.build_queries(["vllm"], CTX)[Metric.WAITING]

    assert text is not None
    assert (
        'time() - timestamp(vllm:num_requests_waiting{lmscale_dev_deployment!=""})) <= 60' in text
    )


def test_watched_namespaces_restrict_every_selector() -> None:
    ctx = promql.QueryContext(namespaces=("team-a", "team-b"))

    for text in queries.build_queries(registry.kinds(), ctx).values():
        assert text is not None
        selectors = text.count("{")
        assert text.count('namespace=~"team-a|team-b"') == selectors


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        pytest.param(60, "[60s]", id="whole-seconds"),
        pytest.param(2.5, "[2500ms]", id="fraction"),
        pytest.param(0.0001, "[1ms]", id="at-least-1ms"),
    ],
)
def test_rate_window(seconds: float, expected: str) -> None:
    text = promql.histogram_quantile("h", promql.QueryContext(rate_window_seconds=seconds))

    assert expected in text


def test_unknown_engine_is_an_error() -> None:
    with pytest.raises(registry.UnknownEngineError, match="known: vllm, tgi, sglang"):
        queries.build_queries(["triton"], CTX)
