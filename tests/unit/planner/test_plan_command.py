"""`lmscale plan`: flags, LanguageModelDeployment files, the JSON contract and errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml

from lmscale.commands import plan as plan_command


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="lmscale")
    plan_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["plan", *argv])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_issue_example_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["--model", "llama-3.1-8b", "--gpu", "nvidia-h100-80gb", "--context",
                         "4096", "--batch", "64", "--output", "json"], capsys)
    assert code == 0
    data = json.loads(out)
    for key in ("weights_bytes", "kv_bytes_per_token", "gpus_per_replica",
                "max_concurrent_sequences", "decode_step_seconds", "decode_tokens_per_second",
                "prefill_tokens_per_second", "fits", "reason"):
        assert key in data
    assert data["fits"] is True and data["kv_bytes_per_token"] == 131072


def test_candidates_without_a_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["--model", "llama-3.1-8b", "--rate", "5", "--slo-ttft-ms", "800",
                         "--output", "json"], capsys)
    assert code == 0
    candidates = json.loads(out)["candidates"]
    assert candidates
    assert all({"gpu", "replicas", "cost_per_hour"} <= set(c) for c in candidates)
    costs = [c["cost_per_hour"] for c in candidates]
    assert costs == sorted(costs)


def test_candidates_table_explains_the_losers(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["--model", "llama-3.1-8b", "--rate", "5", "--slo-ttft-ms", "800",
                         "--slo-tpot-ms", "50"], capsys)
    assert code == 0
    assert "why the others lost" in out and "nvidia-t4" in out


def test_a_deployment_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lmd = tmp_path / "lmd.yaml"
    lmd.write_text(yaml.safe_dump({
        "apiVersion": "lmscale.dev/v1alpha1", "kind": "LanguageModelDeployment",
        "metadata": {"name": "chat"},
        "spec": {
            "model": {"name": "meta-llama/Llama-3.1-70B-Instruct",
                      "architecture": "llama-3.1-70b", "dtype": "bfloat16",
                      "maxContextLength": 8192, "source": {"uri": "pvc://models/l70"}},
            "accelerator": {"type": "nvidia-h100-80gb", "gpusPerReplica": "auto"},
            "slo": {"ttftP95Ms": 1000, "tpotP95Ms": 80},
        },
    }))
    code, out, _ = _run(["-f", str(lmd), "-o", "yaml"], capsys)
    assert code == 0
    data = yaml.safe_load(out)
    assert data["gpu"] == "nvidia-h100-80gb" and data["context"] == 8192
    # auto: the cheapest per request at the file's SLO, not the fewest GPUs that fit (2).
    assert data["gpus_per_replica"] in (4, 8)
    assert data["gpus_per_replica_reason"].startswith(f"{data['gpus_per_replica']} GPUs")
    assert data["storage"]["source"] == "pvc"
    assert data["target_concurrency"] >= 1


def test_a_deployment_file_with_an_inline_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lmd = tmp_path / "lmd.yaml"
    lmd.write_text(yaml.safe_dump({"spec": {
        "model": {"name": "acme/tiny", "dtype": "bfloat16", "shape": {
            "layers": 4, "hiddenSize": 512, "attentionHeads": 8, "kvHeads": 2,
            "ffnSize": 1024, "vocabSize": 32000, "maxContextLength": 4096}},
        "accelerator": {"type": "nvidia-l4", "gpusPerReplica": 1},
    }}))
    code, out, _ = _run(["-f", str(lmd), "-o", "json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["model"] == "acme/tiny" and data["kv_bytes_per_token"] == 2 * 4 * 2 * 64 * 2


def test_flags_override_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lmd = tmp_path / "lmd.yaml"
    lmd.write_text(yaml.safe_dump({"spec": {
        "model": {"architecture": "llama-3.1-8b", "maxContextLength": 8192},
        "accelerator": {"type": "nvidia-l4"}}}))
    code, out, _ = _run(["-f", str(lmd), "--gpu", "nvidia-h200", "--context", "2048",
                         "-o", "json"], capsys)
    assert code == 0
    assert json.loads(out)["gpu"] == "nvidia-h200" and json.loads(out)["context"] == 2048


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--model", "llama-3.1-8", "--gpu", "nvidia-h100-80gb"],
                     "did you mean llama-3.1-8b", id="unknown-model"),
        pytest.param(["--model", "llama-3.1-8b", "--gpu", "h100"], "nvidia-h100-80gb",
                     id="unknown-gpu"),
        pytest.param(["--gpu", "nvidia-l4"], "name a model", id="no-model"),
        pytest.param(["--model", "llama-3.1-8b", "--rate", "3"], "--slo-ttft-ms",
                     id="rate-without-slo"),
        pytest.param(["--model", "llama-3.1-8b", "--price", "nvidia-l4=cheap"], "GPU=USD",
                     id="bad-price"),
        pytest.param(["--model", "llama-3.1-8b", "--gpu", "nvidia-l4", "--gpus-per-replica",
                      "two"], "number or auto", id="bad-degree"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(argv, capsys)
    assert code == 2 and out == ""
    assert message in err


def test_an_impossible_fit_reports_memory_and_exits_1(
    capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(["--model", "llama-3.1-405b", "--gpu", "nvidia-l4", "-o", "json"],
                        capsys)
    data = json.loads(out)
    assert code == 1 and data["fits"] is False
    assert "GiB per GPU" in data["reason"] and "usable" in data["reason"]


def test_price_override_and_catalog_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = tmp_path / "catalog.yaml"
    extra.write_text(yaml.safe_dump({"gpus": {"nvidia-l4": {"price_per_hour": 0.5}}}))
    code, out, _ = _run(["--model", "llama-3.1-8b", "--gpu", "nvidia-l4", "--catalog",
                         str(extra), "-o", "json"], capsys)
    assert code == 0 and json.loads(out)["price_per_gpu_hour"] == 0.5
    code, out, _ = _run(["--model", "llama-3.1-8b", "--gpu", "nvidia-l4", "--price",
                         "nvidia-l4=0.25", "--gpus-per-replica", "2", "-o", "json"], capsys)
    assert json.loads(out)["cost_per_hour"] == 0.5


def test_catalog_dir_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "models.yaml").write_text(yaml.safe_dump({"models": {"tiny": {
        "layers": 2, "hidden_size": 64, "attention_heads": 4, "kv_heads": 2, "head_dim": 16,
        "intermediate_size": 128, "vocab_size": 1000, "max_context": 2048}}}))
    monkeypatch.setenv(plan_command.CATALOG_DIR_ENV, str(tmp_path))
    code, out, _ = _run(["--model", "tiny", "--gpu", "nvidia-l4", "--context", "1024",
                         "-o", "json"], capsys)
    assert code == 0 and json.loads(out)["model"] == "tiny"


def test_list_and_plain_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["--list"], capsys)
    assert code == 0 and "llama-3.1-405b" in out and "NVIDIA-H200" in out
    code, out, _ = _run(["--model", "llama-3.1-8b", "--gpu", "nvidia-h100-80gb"], capsys)
    assert code == 0 and "KV capacity" in out and "cold start" in out


def test_without_a_gpu_auto_chooses_the_type_too(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["--model", "llama-3.1-8b", "--context", "8192", "-o", "json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["fits"]
    weighed = {c["gpu"] for c in data["gpus_per_replica_candidates"]}
    assert len(weighed) == 7 and data["gpu"] in weighed  # all but the T4 (no bfloat16)
    cheapest = min(c["cost_per_1000_requests"] for c in data["gpus_per_replica_candidates"]
                   if c["calibrated"])
    chosen = next(c for c in data["gpus_per_replica_candidates"]
                  if (c["gpu"], c["gpus_per_replica"]) == (data["gpu"], data["gpus_per_replica"]))
    assert chosen["cost_per_1000_requests"] <= cheapest * 1.05


def test_every_gpu_at_a_fixed_degree(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["--model", "llama-3.1-70b", "--gpus-per-replica", "8", "-o", "json"],
                        capsys)
    plans = json.loads(out)["plans"]
    assert code == 0 and len(plans) == 8


def test_rate_and_mix_from_a_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "azure.csv"
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                     "2023-11-16 18:15:46.000000,1000,100\n"
                     "2023-11-16 18:15:47.000000,2000,300\n"
                     "2023-11-16 18:15:48.000000,3000,200\n")
    code, out, _ = _run(["--model", "llama-3.1-8b", "--trace", str(trace), "--slo-ttft-ms",
                         "2000", "-o", "json"], capsys)
    assert code == 0
    load = json.loads(out)["load"]
    assert load == {"rate_rps": 1.5, "mean_prompt_tokens": 2000, "mean_output_tokens": 200}
