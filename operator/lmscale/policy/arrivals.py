"""The arrival rate a fleet must carry, from what the engines export, and what it needs.

Under a burst, the in-flight count mixes two things: the rate requests arrive at, and the
queue that builds while capacity is missing. Sized on in-flight, a queue that grows during
a cold start reads as ever more load: 3 -> 7 -> 14 -> 28 -> 56 -> 64 replicas on a burst
that 27 carry. Requests are conserved, so what arrived over a window is what completed
plus what in-flight grew by: the completion rate (a counter every engine exports) and the
in-flight gauge give the arrival rate without an arrival counter in the path.

With the activator in front (`lmscale gateway`), its arrival counter is read too
(`Observation.front_arrivals_per_second`, Prometheus' rate() over the same window): the
rate sized for is never below it (`counted`). By conservation both mostly agree; the
counter is the floor where the reconstruction reads low, and where the activator is in
every request's path (`routing.activator: always`) it is the rate when the engines export
no completion counter. It does not lead: a rate over the same window rises no sooner.

Replicas are sized for that rate at the calibrated rate per replica. The queue beyond what
the fleet holds in steady state (the backlog) only adds the rate that drains it within
one reaction time, and at most one tolerance band of the rate: replicas asked for now
serve after their cold start, by which time the requests queued now have drained or
missed their objective; and engines do not hand queued requests to new replicas (the
balancer sends new arrivals to them instead), so the backlog is not load the new replicas
must carry. While replicas start, the cold-start guard caps the waiting requests counted
(`guard`), so a backlog growing meanwhile asks for nothing more. A trend is not
extrapolated here: the learned headroom (`volatility`) covers what the rate rises by
within one reaction time.

The exception is a backlog too big to drain within one reaction time: the balancer sends
new arrivals elsewhere, so the replicas that hold it carry none of the rate until it is
gone. A burst on a quiet fleet leaves its queue on the few replicas that were there; each
holds it for minutes, and the new replicas alone then run past their band top, so the
queue that builds on them as they turn ready one by one does not drain either. Those
replicas (`clogged`: at most the ones there before the scale-up, as many as the backlog
keeps busy for a whole reaction time) are not counted as capacity.

A scale-up on a burst comes in steps (the rate shows over a few scrapes, the rate rules
allow so much per period), so its replicas turn ready one group after another. The first
ready take every arrival the clogged ones refuse, far past their band top, until the last
group is ready: a queue on the new replicas that the rate alone never pays back (24
replicas for 44 req/s of which 3 held the cold start's queue spent four minutes draining
it). From the ages of the replicas on the way, `staggered` counts that queue and asks for
the replicas that drain it within one reaction time of the last one's readiness: asked
now, they are ready then. It is the arrival rate against known capacity, never the
queue read back, so it does not cascade.

Both the drain and `staggered` are bets that the burst outlasts a reaction time: where
the ready replicas would clear the backlog within one reaction time were the rate back at
its recent low (`outlasts`), a burst shorter than a cold start is over before anything
asked now serves, and neither applies: the rate and the learned headroom size the fleet.
"""

from __future__ import annotations

from collections.abc import Sequence

from lmscale.policy import loadcurve
from lmscale.policy.calculator import Proposal, ceil, within
from lmscale.policy.decision import DecisionReason
from lmscale.policy.observation import Observation
from lmscale.policy.spec import ScalingPolicySpec
from lmscale.policy.startup import STALL_FACTOR

# The window the change of in-flight is taken over: the completion rate's rate() window.
WINDOW_SECONDS = 60.0
# A rise is also read over three scrapes (at the default 15 s): a burst then sizes the fleet
# one scrape after it shows, not a window later, and a scrape's misalignment with the
# cycle moves that reading by at most a third (over 20 s it read 56 req/s for 44).
SHORT_SECONDS = 45.0

Sample = tuple[float, float, float]  # (time, in-flight requests, arrival rate)


def usable(spec: ScalingPolicySpec, observation: Observation) -> bool:
    """Arrivals size the fleet when there is a rate per replica and an arrival rate: the
    engines' completion rate, or the front door's count where it sees every request."""
    return (
        spec.rate_at_target is not None
        and (observation.completions_per_second is not None or _whole_front(spec, observation))
        and observation.load is not None
        and observation.spec_replicas > 0
    )


def _whole_front(spec: ScalingPolicySpec, observation: Observation) -> bool:
    """The front door's rate is the whole arrival rate (the activator in every request's
    path); in its other mode it counts only what arrived while no replica was ready."""
    return spec.front_door_counts_all and observation.front_arrivals_per_second is not None


def counted(engines: float | None, front: float | None) -> float:
    """The arrival rate to size for: the engines' estimate, never below the front door's.

    The front door counts arrivals; the engines' figure is rebuilt from conservation and
    reads low on a cycle without a new scrape, or while replicas that just turned ready
    fill up. At zero only, the front door counts a subset of the window's arrivals (its
    rate decays once replicas are ready), so the larger of the two is still no more than
    arrived. `None` is unknown, never 0.
    """
    known = [rate for rate in (engines, front) if rate is not None]
    return max([0.0, *known])


def estimate(
    samples: Sequence[Sample], *, now: float, in_flight: float, completions: float
) -> float:
    """Requests/s arriving over the last window: completions plus the rise of in-flight.

    `samples` are earlier cycles'; the oldest one inside the window is the reference.
    """
    inside = [(t, load) for t, load, _ in samples if now - WINDOW_SECONDS <= t < now]
    if not inside:
        return max(0.0, completions)
    then, load_then = inside[0]
    return max(0.0, completions + (in_flight - load_then) / (now - then))


def leading(
    samples: Sequence[Sample], *, now: float, in_flight: float, completions: float
) -> float:
    """`estimate`, or more where in-flight rose faster over the last `SHORT_SECONDS`.

    The completion rate is still the window's, so this reads high while completions
    climb (replicas that just turned ready fill up first): the caller uses it only
    before any has turned ready since a scale-up.
    """
    rate = estimate(samples, now=now, in_flight=in_flight, completions=completions)
    recent = [(t, load) for t, load, _ in samples if now - SHORT_SECONDS <= t < now]
    if not recent:
        return rate
    since, load_since = recent[0]
    return max(rate, completions + (in_flight - load_since) / (now - since))


def backlog(
    spec: ScalingPolicySpec, observation: Observation, *, rate: float, load: float
) -> float:
    """Requests in flight beyond what the ready replicas hold carrying `rate` steadily."""
    ready = max(1, observation.reporting)
    steady = ready * loadcurve.in_flight_of(spec.load_curve, rate / ready)
    return max(0.0, load - steady)


def clogged(
    spec: ScalingPolicySpec, *, backlog: float, reaction_seconds: float, holders: int
) -> float:
    """Replicas a backlog keeps from new arrivals over the next reaction time.

    `holders` replicas hold the queue (those there when it built: the balancer sends new
    arrivals to the emptier replicas); each drains at most the band top's rate, so the
    backlog keeps `backlog / (band top * reaction)` of them busy for the whole time, never
    more than there are.
    """
    top = (spec.rate_at_target or 1.0) * (1 + spec.tolerance)
    if holders <= 0 or reaction_seconds <= 0:
        return 0.0
    return min(float(holders), backlog / (top * reaction_seconds))


def outlasts(
    spec: ScalingPolicySpec,
    observation: Observation,
    *,
    queued: float,
    low: float,
    clogged: float,
    reaction_seconds: float,
) -> bool:
    """Whether a backlog would outlast one reaction time were the burst over now.

    Replicas asked for now serve one reaction time later (start-up, scrape, period). A
    burst shorter than that is over before they are ready, and the ready replicas that no
    backlog holds, each at the band top, drain its queue with what they have spare over the
    rate it came from (`low`, the lowest of the last reaction time): where that clears the
    queue within one reaction time, nothing asked now serves it, and the rate alone (with
    the learned headroom) is what to size for. Only a backlog past that is evidence the
    burst is not one the ready fleet absorbs; the threshold is the reaction time itself.
    """
    if queued <= 0:
        return False
    top = (spec.rate_at_target or 1.0) * (1 + spec.tolerance)
    spare = max(0.0, (observation.ready_replicas - clogged) * top - low)
    return queued > spare * reaction_seconds


def staggered(
    spec: ScalingPolicySpec,
    observation: Observation,
    *,
    rate: float,
    clogged: float,
    startup_seconds: float,
    reaction_seconds: float,
) -> float:
    """Replicas that drain, within `reaction_seconds`, the queue the replicas on the way
    build as they turn ready one group after another.

    Until the last of them is ready, the fleet carries the ready replicas that no backlog
    holds plus those of the starting ones ready by then, each at most at the band top; the
    rate past that queues on the ones ready first. Without start-up ages (or with every
    starting pod past its estimate) nothing is known of the order: nothing is added.
    """
    if reaction_seconds <= 0 or rate <= 0 or not observation.starting_ages:
        return 0.0
    limit = STALL_FACTOR * startup_seconds
    remaining = sorted(
        max(0.0, startup_seconds - age) for age in observation.starting_ages if age <= limit
    )
    if len(remaining) < 2:
        return 0.0
    top = (spec.rate_at_target or 1.0) * (1 + spec.tolerance)
    serving = max(0.0, observation.ready_replicas - clogged)
    queue = 0.0
    for index in range(1, len(remaining)):
        span = remaining[index] - remaining[index - 1]
        carried = (serving + index) * top
        queue += max(0.0, rate - carried) * span
    return queue / reaction_seconds / (spec.rate_at_target or 1.0)


def propose(
    spec: ScalingPolicySpec,
    observation: Observation,
    *,
    rate: float,
    queued: float,
    reaction_seconds: float,
    on_the_way: int,
    clogged: float = 0.0,
    staggered: float = 0.0,
) -> Proposal:
    """Replicas for `rate`, plus what drains `queued` within `reaction_seconds`, at most
    one tolerance band of the rate, plus the `clogged` replicas that carry none of it,
    plus the `staggered` ones that drain the queue a stepped scale-up leaves.

    Starting replicas count as capacity (they will carry the rate once ready), so a
    scale-up already under way is never asked for twice. Ready pods that do not report
    hide their completions: with them, the fleet never shrinks on this cycle's figure.
    """
    current = observation.spec_replicas
    per_replica = spec.rate_at_target or 1.0
    drain = min(queued / reaction_seconds if reaction_seconds > 0 else 0.0, spec.tolerance * rate)
    need = (rate + drain) / per_replica + clogged + staggered
    starting = f", {on_the_way} starting" if on_the_way else ""
    held = f" ({clogged:.1f} held by a backlog)" if clogged >= 0.05 else ""
    if staggered >= 0.05:
        starting += f" ({staggered:.1f} more drain what they queue turning ready in steps)"
    text = (
        f"{rate:.1f} requests/s arriving, {queued:.0f} queued beyond steady state, on "
        f"{observation.ready_replicas} ready replicas{held}{starting}; {per_replica:.2f}/s "
        f"per replica at target"
    )
    if observation.reporting == 0:
        reason = (
            DecisionReason.COLD_START_GUARD if on_the_way else DecisionReason.MISSING_POD_METRICS
        )
        return Proposal(current, reason, f"no ready replica reports; {text}")
    capacity = observation.ready_replicas + on_the_way
    ratio = need / capacity if capacity > 0 else float("inf")
    if within(ratio, spec.tolerance):
        return Proposal(current, DecisionReason.WITHIN_TOLERANCE, f"{text}: within tolerance")
    wanted = ceil(need)
    if ratio > 1 and wanted > current:
        return Proposal(wanted, DecisionReason.LOAD_ABOVE_TARGET, f"{text}: {wanted} wanted")
    missing = observation.ready_replicas - observation.reporting
    if ratio < 1 and wanted < current and missing == 0:
        return Proposal(wanted, DecisionReason.LOAD_BELOW_TARGET, f"{text}: {wanted} wanted")
    reason = DecisionReason.COLD_START_GUARD if on_the_way else DecisionReason.MISSING_POD_METRICS
    if ratio > 1:
        return Proposal(current, reason, f"{text}: held, capacity covers it")
    return Proposal(current, DecisionReason.MISSING_POD_METRICS, f"{text}: held, pods missing")
