"""The stand-in reads an engine's command line as that engine's parser does (pure: no server)."""

from __future__ import annotations

import pytest

from lmscale.api import EngineKind
from lmscale.sim.standin import cli

REJECTED = [
    pytest.param(EngineKind.VLLM, ["serve", "m", "--tp", "2"],
                 "vllm serve: error: unrecognized arguments: --tp 2", id="vllm-unknown"),
    pytest.param(EngineKind.VLLM, ["serve", "m", "--port"],
                 "error: argument --port: expected one argument", id="vllm-missing-value"),
    pytest.param(EngineKind.VLLM, ["serve", "m", "--max-num"],
                 "error: ambiguous option: --max-num could match --max-num-batched-tokens, "
                 "--max-num-partial-prefills, --max-num-seqs", id="vllm-ambiguous-prefix"),
    pytest.param(EngineKind.VLLM, ["chat"], "plays `vllm serve` only", id="vllm-not-serve"),
    pytest.param(EngineKind.TGI, ["--served-model-name", "x"],
                 "error: unexpected argument '--served-model-name' found", id="tgi-unknown"),
    pytest.param(EngineKind.TGI, ["--model-id", "m", "extra"],
                 "error: unexpected argument 'extra' found", id="tgi-positional"),
    pytest.param(EngineKind.SGLANG, ["--model-path", "m", "--bogus"],
                 "launch_server.py: error: unrecognized arguments: --bogus", id="sglang-unknown"),
    pytest.param(EngineKind.SGLANG, ["--port", "1"],
                 "the following arguments are required: --model-path/--model",
                 id="sglang-no-model"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "argv", "message"), REJECTED)
def test_rejects_as_the_engine_would(kind: EngineKind, argv: list[str], message: str) -> None:
    with pytest.raises(cli.UsageError) as caught:
        cli.parse(kind, argv, env={})
    assert caught.value.status == 2
    assert message in caught.value.message


def test_vllm_refuses_model_flag_with_serve() -> None:
    with pytest.raises(cli.UsageError) as caught:
        cli.parse(EngineKind.VLLM, ["serve", "--model", "m"], env={})
    assert caught.value.status == 1 and "positional argument" in caught.value.message


def test_vllm_line() -> None:
    config = cli.parse(EngineKind.VLLM, ["serve", "meta-llama/Llama-3.1-8B-Instruct",
                                         "--tensor-parallel-size", "2", "--max-model-len", "8k",
                                         "--served-model-name", "llama", "--port", "8001"],
                       env={"LMSCALE_STANDIN_GPU": "nvidia-l4"})  # fmt: skip
    assert (config.model, config.served_name, config.port, config.tensor_parallel) == (
        "meta-llama/Llama-3.1-8B-Instruct", "llama", 8001, 2,
    )  # fmt: skip
    assert config.max_model_len == 8000
    assert (config.architecture, config.gpu) == ("llama-3.1-8b", "nvidia-l4")


def test_sglang_accepts_the_prefix_its_argparse_accepts() -> None:
    """A unique prefix works in the real SGLang too (argparse allow_abbrev); lmscale never
    renders one and reports it in spec.engine.args."""
    config = cli.parse(EngineKind.SGLANG, ["--model-path", "Qwen/Qwen2.5-7B-Instruct", "--tp",
                                           "2"], env={})  # fmt: skip
    assert config.tensor_parallel == 2
    assert (config.host, config.port, config.served_name) == (
        "127.0.0.1", 30000, "Qwen/Qwen2.5-7B-Instruct",
    )  # fmt: skip
    assert config.architecture == "qwen2.5-7b"


def test_tgi_env_fallbacks_and_defaults() -> None:
    config = cli.parse(EngineKind.TGI, ["--num-shard", "2"],
                       env={"MODEL_ID": "Qwen/Qwen2.5-7B-Instruct", "PORT": "80",
                            "HOSTNAME": "pod-abc"})  # fmt: skip
    assert (config.model, config.port, config.tensor_parallel) == (
        "Qwen/Qwen2.5-7B-Instruct", 80, 2,
    )  # fmt: skip
    assert config.host == "0.0.0.0", "Kubernetes sets HOSTNAME to the pod name: not a bind address"
    assert config.side_port == 9000
    assert config.served_name == config.model, "TGI reports the model it loaded"
