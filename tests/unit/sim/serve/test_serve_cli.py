"""`lmscale sim serve` flags, and trace loads read through `lmscale.sim.trace`."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from lmscale.cli import build_parser, main
from lmscale.sim.serve import load
from lmscale.sim.serve.server import Traces

SHARED_TRACES = Path(__file__).resolve().parents[5] / "shared" / "traces"
AZURE = SHARED_TRACES / "AzureLLMInferenceTrace_conv.csv"


def test_flags_and_defaults() -> None:
    args = build_parser().parse_args(["sim", "serve"])

    assert args.listen == ("127.0.0.1", 9400)
    assert args.load == load.Constant(0.0)
    assert (args.prompt_tokens, args.output_tokens) == (512, 128)
    assert args.balancer == "least-requests" and args.seed == 0 and args.poll_seconds == 2.0
    assert args.register_targets is None and args.kubeconfig is None and args.namespaces == []


def test_every_flag() -> None:
    args = build_parser().parse_args([
        "sim", "serve", "--kubeconfig", "k", "--listen", "0.0.0.0:0", "--register-targets",
        "/t", "--load", "steps:1@10,4@20", "--prompt-tokens", "900", "--output-tokens", "90",
        "--balancer", "round-robin", "--seed", "7", "--poll-seconds", "0.5", "-n", "a", "-n",
        "b"])

    assert args.listen == ("0.0.0.0", 0) and str(args.register_targets) == "/t"
    assert args.load == load.Steps(((1.0, 10.0), (4.0, 20.0)))
    assert args.namespaces == ["a", "b"] and args.balancer == "round-robin"


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--load", "fast"], id="bad-load"),
        pytest.param(["--listen", "9400"], id="listen-without-host"),
        pytest.param(["--listen", "localhost:http"], id="listen-bad-port"),
        pytest.param(["--balancer", "random"], id="bad-balancer"),
    ],
)
def test_bad_flags_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["sim", "serve", *argv])

    assert exit_.value.code == 2


def test_a_missing_trace_fails_before_anything_starts(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    assert main(["sim", "serve", "--load", "trace:/nonexistent/trace.csv"]) == 2
    assert "/nonexistent/trace.csv" in capsys.readouterr().err


def test_a_mooncake_trace_is_read_once(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"timestamp": 0, "input_length": 100, "output_length": 5}\n'
                    '{"timestamp": 500, "input_length": 200, "output_length": 9}\n')
    traces = Traces()
    first = traces.load(load.parse_spec(f"trace:{path}@2x"), load.Tokens())
    path.unlink()
    again = traces.load(load.parse_spec(f"trace:{path}"), load.Tokens())

    assert [r.prompt_tokens for r in first.trace] == [100, 200]
    assert again.trace == first.trace
    arrivals = load.start(first, rng=random.Random(0))
    assert [r.arrival_s for r in arrivals.take(0.3)] == [0.0, 0.25]


@pytest.mark.skipif(not AZURE.exists(), reason="the shared traces are not next to this checkout")
def test_the_azure_trace_replays_at_its_rate_times_the_speed() -> None:
    offered = Traces().load(load.parse_spec(f"trace:{AZURE}@10x"), load.Tokens())
    arrivals = load.start(offered, rng=random.Random(0))
    first_minute = arrivals.take(60.0)

    assert len(offered.trace) == 19366
    # 5.5 requests/s on average over the hour; ten times faster, and the first minute is
    # a quiet one, so the rate is of that order
    assert 10 < len(first_minute) / 60 < 150
    assert arrivals.rate(60.0) > 0
