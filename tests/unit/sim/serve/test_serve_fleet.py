"""The live fleet on a fake clock: engines per Ready pod, routing, draining, lost requests."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from lmscale.sim.balancer import BalancerKind
from lmscale.sim.serve import load
from lmscale.sim.serve.fleet import DeploymentInfo, Fleet, PodInfo, PodView, percentile

TOKENS = load.Tokens(prompt=50, output=10)


@dataclass(frozen=True)
class FlatSteps:
    """A replica whose every step takes the same time: easy numbers to reason about."""

    kv_capacity_tokens: int = 100_000
    max_num_seqs: int = 64
    max_num_batched_tokens: int = 2048
    seconds: float = 0.01

    def step_seconds(self, *, prefill_tokens: int, decode_seqs: int, kv_tokens: int) -> float:
        return self.seconds


def deployment(*pods: PodInfo, name: str = "chat", engine: str = "vllm",
               perf: FlatSteps | None = None) -> DeploymentInfo:
    return DeploymentInfo(namespace="team-a", name=name, engine=engine, model="m",
                          gpu_model="NVIDIA H100 80GB HBM3", gpus_per_replica=2,
                          perf=perf or FlatSteps(), pods=pods)


def ready(name: str) -> PodInfo:
    return PodInfo(name, True, "node-1")


def not_ready(name: str) -> PodInfo:
    return PodInfo(name, False, "node-1")


def fleet(rps: float = 0.0, balancer: BalancerKind = BalancerKind.ROUND_ROBIN,
          seed: int = 0) -> Fleet:
    return Fleet(default_load=load.Load(load.Constant(rps), TOKENS), balancer=balancer,
                 seed=seed)


def run(f: Fleet, start: float, until: float, step: float = 0.25) -> None:
    t = start
    while t < until:
        t = min(until, t + step)
        f.advance(t)


def views(f: Fleet) -> dict[str, PodView]:
    return {v.pod: v for v in f.pods()}


def state(f: Fleet, name: str = "chat") -> dict[str, object]:
    return dict(f.state()[f"team-a/{name}"])


def in_flight(f: Fleet) -> int:
    return sum(v.waiting + v.running for v in f.pods())


def test_an_engine_per_ready_pod_and_none_for_pods_not_yet_ready() -> None:
    f = fleet()
    f.sync([deployment(ready("a"), not_ready("b"))], now=0.0)

    assert list(views(f)) == ["a"]
    assert state(f)["readyPods"] == ["a"]

    f.sync([deployment(ready("a"), ready("b"))], now=1.0)
    assert list(views(f)) == ["a", "b"]


def test_round_robin_spreads_arrivals_evenly() -> None:
    f = fleet(rps=20.0)
    f.sync([deployment(ready("a"), ready("b"))], now=0.0)
    run(f, 0.0, 30.0)

    pods = views(f)
    s = state(f)
    assert s["completed"] == pods["a"].completed + pods["b"].completed
    assert abs(pods["a"].completed - pods["b"].completed) <= 2
    assert s["offered"] == s["completed"] + in_flight(f)
    assert 500 < int(s["offered"]) < 700  # type: ignore[call-overload]


def test_least_requests_sends_new_arrivals_to_the_new_pod() -> None:
    slow = FlatSteps(seconds=1.0)  # requests pile up on the first pod
    f = fleet(rps=5.0, balancer=BalancerKind.LEAST_REQUESTS)
    f.sync([deployment(ready("a"), perf=slow)], now=0.0)
    run(f, 0.0, 10.0)
    before = views(f)["a"]
    f.sync([deployment(ready("a"), ready("b"), perf=slow)], now=10.0)
    run(f, 10.0, 14.0)

    after = views(f)
    assert before.waiting + before.running > 20
    assert after["b"].waiting + after["b"].running >= 15  # the newcomer took (nearly) all
    assert after["a"].waiting + after["a"].running <= before.waiting + before.running


def test_a_pod_that_is_not_ready_drains_and_still_exports() -> None:
    f = fleet(rps=10.0)
    f.sync([deployment(ready("a"), ready("b"))], now=0.0)
    run(f, 0.0, 5.0)
    f.sync([deployment(ready("a"), not_ready("b"))], now=5.0)
    done_b = views(f)["b"].completed
    run(f, 5.0, 20.0)

    pods = views(f)
    assert pods["b"].ready is False
    assert pods["b"].waiting + pods["b"].running == 0  # finished what it held
    assert pods["b"].completed - done_b <= 10  # and took nothing new
    assert state(f)["drainingPods"] == ["b"]
    assert state(f)["lost"] == 0


def test_a_pod_that_is_gone_loses_what_it_held() -> None:
    slow = FlatSteps(seconds=0.5)
    f = fleet(rps=10.0)
    f.sync([deployment(ready("a"), ready("b"), perf=slow)], now=0.0)
    run(f, 0.0, 5.0)
    held = views(f)["b"].waiting + views(f)["b"].running
    f.sync([deployment(ready("a"), perf=slow)], now=5.0)

    assert held > 0
    assert state(f)["lost"] == held
    assert list(views(f)) == ["a"]


def test_arrivals_without_ready_pods_are_refused() -> None:
    f = fleet(rps=10.0)
    f.sync([deployment(not_ready("a"))], now=0.0)
    run(f, 0.0, 10.0)

    s = state(f)
    assert s["unserved"] == s["offered"] and int(s["offered"]) > 50  # type: ignore[call-overload]
    assert s["completed"] == 0


def test_a_deployment_that_is_gone_is_dropped() -> None:
    f = fleet(rps=5.0)
    f.sync([deployment(ready("a")), deployment(ready("x"), name="other")], now=0.0)
    run(f, 0.0, 2.0)
    f.sync([deployment(ready("a"))], now=2.0)

    assert list(f.state()) == ["team-a/chat"]
    assert [v.pod for v in f.pods()] == ["a"]


def test_set_load_changes_one_deployment_from_now_on() -> None:
    f = fleet(rps=0.0)
    f.sync([deployment(ready("a")), deployment(ready("x"), name="other")], now=0.0)
    run(f, 0.0, 5.0)
    f.set_load("team-a", "chat", load.Load(load.Constant(40.0), load.Tokens(20, 4)), now=5.0)
    run(f, 5.0, 15.0)

    chat, other = state(f), state(f, "other")
    assert 300 < int(chat["offered"]) < 500  # type: ignore[call-overload]
    assert chat["offeredRps"] == 40.0 and chat["promptTokens"] == 20
    assert other["offered"] == 0 and other["offeredRps"] == 0.0

    f.set_load("team-a", "chat", None, now=15.0)
    assert state(f)["load"] == "constant:0"


def test_a_load_set_before_the_deployment_exists_applies_when_it_appears() -> None:
    f = fleet(rps=0.0)
    f.set_load("team-a", "chat", load.Load(load.Constant(10.0), TOKENS), now=0.0)
    f.sync([deployment(ready("a"))], now=1.0)
    run(f, 1.0, 11.0)

    assert state(f)["load"] == "constant:10"
    assert int(state(f)["offered"]) > 50  # type: ignore[call-overload]


def test_same_seed_and_events_give_the_same_fleet() -> None:
    def play(seed: int) -> tuple[dict[str, object], list[PodView]]:
        f = fleet(rps=15.0, balancer=BalancerKind.LEAST_REQUESTS, seed=seed)
        f.sync([deployment(ready("a"), ready("b"))], now=0.0)
        run(f, 0.0, 10.0, step=0.3)
        return f.state(), f.pods()

    assert play(1) == play(1)
    assert play(1) != play(2)


def test_gpu_utilisation_is_near_one_under_load_and_zero_when_idle() -> None:
    f = fleet(rps=30.0)
    f.sync([deployment(ready("a"), perf=FlatSteps(seconds=0.05))], now=0.0)
    run(f, 0.0, 20.0)
    busy = views(f)["a"].gpu_utilization
    f.set_load("team-a", "chat", load.Load(load.Constant(0.0), TOKENS), now=20.0)
    run(f, 20.0, 60.0)

    assert busy > 0.95
    assert views(f)["a"].gpu_utilization == 0.0
    assert views(f)["a"].waiting + views(f)["a"].running == 0


def test_ttft_histogram_and_p95_follow_the_requests() -> None:
    f = fleet(rps=10.0)
    f.sync([deployment(ready("a"))], now=0.0)
    run(f, 0.0, 20.0)

    pod = views(f)["a"]
    s = state(f)
    assert pod.ttft.count >= pod.completed > 100
    assert pod.ttft.buckets[-1] == (float("inf"), pod.ttft.count)
    counts = [c for _, c in pod.ttft.buckets]
    assert counts == sorted(counts)
    assert 0 < float(s["ttftP95Seconds"]) < 0.5  # type: ignore[arg-type]
    assert pod.queue.count == pod.prefill.count == pod.completed  # TGI's, from completions


def test_inter_token_histogram_counts_the_gaps_of_finished_requests() -> None:
    f = fleet(rps=10.0)
    f.sync([deployment(ready("a"))], now=0.0)
    run(f, 0.0, 20.0)

    pod = views(f)["a"]
    # vLLM observes every gap between two output tokens: output - 1 per finished request.
    assert pod.tpot.count == pod.completed * (TOKENS.output - 1) > 0
    assert 0 < pod.tpot.sum / pod.tpot.count < 0.5


def test_a_spec_change_keeps_running_pods_on_their_template() -> None:
    f = fleet()
    f.sync([deployment(ready("a"), engine="vllm")], now=0.0)
    f.sync([deployment(ready("a"), ready("b"), engine="sglang")], now=1.0)

    assert {v.pod: v.engine for v in f.pods()} == {"a": "vllm", "b": "sglang"}


def test_time_never_moves_back() -> None:
    f = fleet(rps=10.0)
    f.sync([deployment(ready("a"))], now=0.0)
    run(f, 0.0, 5.0)
    before = state(f)
    f.advance(3.0)

    assert state(f) == before


@pytest.mark.parametrize(
    ("samples", "q", "expected"),
    [
        pytest.param([], 0.95, None, id="empty"),
        pytest.param([1.0], 0.95, 1.0, id="one"),
        pytest.param([float(i) for i in range(1, 101)], 0.95, 95.0, id="hundred"),
        pytest.param([float(i) for i in range(1, 21)], 0.95, 19.0, id="twenty"),
    ],
)
def test_percentile_is_nearest_rank(samples: list[float], q: float, expected: float | None
                                    ) -> None:
    assert percentile(samples, q) == expected


def test_a_fallback_types_pod_runs_on_its_own_engine_model() -> None:
    slow = FlatSteps(seconds=0.05)
    info = DeploymentInfo(namespace="team-a", name="chat", engine="vllm", model="m",
                          gpu_model="NVIDIA H100 80GB HBM3", gpus_per_replica=2,
                          perf=FlatSteps(), variants=(("nvidia-a100-80gb",
                                                       "NVIDIA A100 SXM4 80GB", 4, slow),),
                          pods=(ready("chat-h"), PodInfo("chat-a", True, "node-2",
                                                         "nvidia-a100-80gb")))
    f = fleet()
    f.sync([info], now=0.0)
    shown = views(f)
    assert shown["chat-a"].gpu_model == "NVIDIA A100 SXM4 80GB" and shown["chat-a"].gpus == 4
    assert shown["chat-h"].gpu_model == "NVIDIA H100 80GB HBM3" and shown["chat-h"].gpus == 2
