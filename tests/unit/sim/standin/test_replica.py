"""The stand-in's replica on a clock the test moves: every completed request reaches its handler."""

from __future__ import annotations

from lmscale.planner.performance import replica_performance
from lmscale.planner.plan import plan_replica
from lmscale.sim.standin.replica import Replica


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_request_that_completes_during_a_metrics_scrape_still_finishes() -> None:
    # /metrics advances the engine to read its gauges; a completion it meets there must be
    # handed to the waiting request, or that stream stalls before its last token forever.
    clock = Clock()
    replica = Replica(replica_performance(plan_replica("llama-3.1-8b", "nvidia-l40s")),
                      clock=clock)
    replica.stop()  # no driver thread: only the scrape advances the engine
    ticket = replica.submit(prompt_tokens=64, output_tokens=16)
    clock.now = 60.0
    replica.gauges()
    assert ticket.done is not None
    assert replica.in_flight == 0
    assert replica.counters.finished == 1
