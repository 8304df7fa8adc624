"""The simulator's scrape body: each engine's own names, the labels the operator joins on."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from lmscale.sim.serve import engines, exporter
from lmscale.sim.serve.fleet import Histogram, PodView

PREFIX = {"vllm": "vllm:", "tgi": "tgi_", "sglang": "sglang:"}
BASE = {"namespace": "team-a", "pod": "chat-0", "lmscale_dev_deployment": "chat"}


def pod(engine: str = "vllm", *, name: str = "chat-0", gpus: int = 1, **values: object
        ) -> PodView:
    ttft = Histogram(engines.export_for(engine).ttft_buckets or engines.VLLM_TTFT_BUCKETS)
    for sample in (0.03, 0.3, 3.0):
        ttft.observe(sample)
    tpot = Histogram(engines.export_for(engine).tpot_buckets)
    tpot.observe(0.02, 99)  # a request of 100 output tokens, 20 ms apart
    queue = Histogram(engines.TGI_DURATION_BUCKETS)
    queue.observe(0.02)
    lengths = Histogram(engines.INPUT_LENGTH_BUCKETS)
    for prompt in (900, 2100):
        lengths.observe(prompt)
    fields: dict[str, object] = dict(
        namespace="team-a", pod=name, deployment="chat", engine=engine, model="llama",
        node="gpu-node-1", gpu_model="NVIDIA H100 80GB HBM3", gpus=gpus, ready=True,
        waiting=3, running=7, kv_cache_usage=0.25, gpu_utilization=0.987, completed=42,
        prompt_tokens=3000, ttft=ttft.view(), tpot=tpot.view(), queue=queue.view(),
        prefill=queue.view(),
        input_length=lengths.view(),
    )
    fields.update(values)
    return PodView(**fields)  # type: ignore[arg-type]


def samples(*pods: PodView) -> list[Sample]:
    text = exporter.render(pods).decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(found: list[Sample], name: str, **labels: str) -> float:
    matching = [s for s in found if s.name == name and labels.items() <= s.labels.items()]
    assert len(matching) == 1, (name, labels, matching)
    return float(matching[0].value)


# The metric-name table of the design document, literally: the operator reads these.
@pytest.mark.parametrize(
    ("engine", "waiting", "running", "kv", "histograms", "prompt_tokens"),
    [
        pytest.param("vllm", "vllm:num_requests_waiting", "vllm:num_requests_running",
                     "vllm:kv_cache_usage_perc",
                     ["vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds"],
                     "vllm:prompt_tokens_total", id="vllm"),
        pytest.param("tgi", "tgi_queue_size", "tgi_batch_current_size", None,
                     ["tgi_request_queue_duration", "tgi_batch_inference_duration",
                      "tgi_request_input_length", "tgi_request_mean_time_per_token_duration"],
                     "tgi_request_input_length_sum", id="tgi"),
        pytest.param("sglang", "sglang:num_queue_reqs", "sglang:num_running_reqs",
                     "sglang:token_usage",
                     ["sglang:time_to_first_token_seconds", "sglang:inter_token_latency_seconds"],
                     "sglang:prompt_tokens_total", id="sglang"),
    ],
)
def test_each_engine_exports_its_own_names(
    engine: str, waiting: str, running: str, kv: str | None, histograms: list[str],
    prompt_tokens: str,
) -> None:
    found = samples(pod(engine))

    assert value(found, waiting, **BASE) == 3
    assert value(found, running, **BASE) == 7
    assert value(found, prompt_tokens, **BASE) == 3000
    if kv is not None:
        assert value(found, kv, **BASE) == 0.25
    for histogram in histograms:
        assert value(found, f"{histogram}_count", **BASE) >= 1
        assert value(found, f"{histogram}_bucket", le="+Inf", **BASE) >= 1
    prefix = PREFIX[engine]  # nothing under another engine's names
    assert {s.name for s in found if s.name != "DCGM_FI_DEV_GPU_UTIL"} == {
        s.name for s in found if s.name.startswith(prefix)}


def test_names_keep_their_colons_in_text_format_0_0_4() -> None:
    text = exporter.render([pod("vllm"), pod("sglang", name="s-0")]).decode()

    assert exporter.CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
    assert "\nvllm:num_requests_waiting{" in text
    assert "# TYPE vllm:time_to_first_token_seconds histogram" in text
    assert "\nsglang:num_queue_reqs{" in text
    assert "vllm_num" not in text and "sglang_num" not in text


def test_engine_series_carry_namespace_pod_deployment_and_model() -> None:
    found = samples(pod("vllm"), pod("tgi", name="t-0"))

    vllm = [s for s in found if s.name == "vllm:num_requests_running"][0]
    tgi = [s for s in found if s.name == "tgi_queue_size"][0]
    assert vllm.labels == {**BASE, "model_name": "llama"}
    assert tgi.labels == {**BASE, "pod": "t-0"}  # TGI labels no model


def test_ttft_histogram_buckets_are_cumulative_with_vllm_bounds() -> None:
    found = samples(pod("vllm"))
    buckets = [s for s in found if s.name == "vllm:time_to_first_token_seconds_bucket"]

    bounds = [float(s.labels["le"]) for s in buckets]
    assert bounds[:-1] == list(engines.VLLM_TTFT_BUCKETS) and math.isinf(bounds[-1])
    counts = [s.value for s in buckets]
    assert counts == sorted(counts) and counts[-1] == 3
    assert value(found, "vllm:time_to_first_token_seconds_bucket", le="0.04", **BASE) == 1
    assert value(found, "vllm:time_to_first_token_seconds_sum", **BASE) == pytest.approx(3.33)


def test_inter_token_histogram_counts_every_gap() -> None:
    found = samples(pod("vllm"))

    assert value(found, "vllm:inter_token_latency_seconds_count", **BASE) == 99
    assert value(found, "vllm:inter_token_latency_seconds_bucket", le="0.025", **BASE) == 99
    assert value(found, "vllm:inter_token_latency_seconds_bucket", le="0.01", **BASE) == 0
    assert value(found, "vllm:inter_token_latency_seconds_sum", **BASE) == pytest.approx(1.98)


def test_tgi_prefill_histogram_is_the_prefill_method() -> None:
    found = samples(pod("tgi"))

    assert value(found, "tgi_batch_inference_duration_count", method="prefill", **BASE) == 1
    assert value(found, "tgi_request_queue_duration_count", **BASE) == 1


def test_completed_requests_are_counted() -> None:
    found = samples(pod("vllm"), pod("tgi", name="t-0"), pod("sglang", name="s-0"))

    assert value(found, "vllm:request_success_total", pod="chat-0") == 42
    assert value(found, "sglang:num_requests_total", pod="s-0") == 42
    assert value(found, "tgi_request_success", pod="t-0") == 42


def test_dcgm_gpu_util_is_a_percent_per_gpu_labelled_like_the_k8s_mapping() -> None:
    found = samples(pod("vllm", gpus=2))
    gpus = [s for s in found if s.name == "DCGM_FI_DEV_GPU_UTIL"]

    assert [s.value for s in gpus] == [99.0, 99.0]
    assert [s.labels["gpu"] for s in gpus] == ["0", "1"]
    first = gpus[0].labels
    assert {k: first[k] for k in ("namespace", "pod", "container")} == {
        "namespace": "team-a", "pod": "chat-0", "container": "engine"}
    assert first["modelName"] == "NVIDIA H100 80GB HBM3" and first["Hostname"] == "gpu-node-1"
    assert first["UUID"].startswith("GPU-") and gpus[1].labels["UUID"] != first["UUID"]
    assert first["device"] == "nvidia0"
    assert "lmscale_dev_deployment" not in first  # joined through the engine's series


def test_no_pods_no_series() -> None:
    assert samples() == []


def test_an_engine_the_simulator_cannot_play_is_an_error() -> None:
    with pytest.raises(ValueError, match="known: vllm, tgi, sglang"):
        engines.export_for("lmdeploy")
