"""A burst shorter than the reaction time asks for its rate, not for its queue (issue 13).

Replicas asked for now serve one reaction time later (start-up, scrape, period: 135 s
here). A 60 s burst is over by then, and the ready replicas clear what queued on them
within that time: the drain term and the stepped scale-up's queue bought replicas that
turned ready after the burst (18 for a burst whose rate 16 carry, on the code before).
"""

from __future__ import annotations

import math

from .test_arrivals import PER_REPLICA, run, spec


def test_a_burst_the_ready_fleet_drains_within_a_reaction_time_asks_for_its_rate() -> None:
    trace, _ = run(spec(), lambda t: 40.0 if 300 <= t < 360 else 20.0, ready=10, seconds=900)
    replicas = [n for _, n in trace]
    assert max(replicas) <= math.ceil(40.0 / PER_REPLICA), replicas


def test_a_backlog_past_what_the_ready_fleet_drains_still_asks_for_the_drain() -> None:
    # A quiet fleet (3 replicas at 7.5 req/s) under a burst to 70: its backlog is past what
    # 3 replicas clear in a reaction time, so the drain applies, as before.
    trace, _ = run(spec(), lambda t: 7.5 if t < 300 else 70.0, ready=3, seconds=900)
    assert max(n for _, n in trace) > math.ceil(70.0 / PER_REPLICA)
