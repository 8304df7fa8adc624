"""One policy cycle: recommendation, stabilization, rate rules, bounds, new history.

`decide` is pure: the scaler passes `now` and the stored history in, persists the
history it gets back, and the simulator replays traces through the very same function.
"""

from __future__ import annotations

from dataclasses import replace

from lmscale.policy import arrivals, behavior, forecast, guard, startup, volatility, wake
from lmscale.policy.calculator import Proposal, ceil, from_load, guarded_load, lower_bound_load
from lmscale.policy.decision import Decision, DecisionReason
from lmscale.policy.history import Recommendation, ScaleEvent, ScalingHistory
from lmscale.policy.observation import Observation
from lmscale.policy.signals import SLO_SETTLE_SECONDS, prefill_floor, slo_push, veto_scale_down
from lmscale.policy.spec import MissingMetricsMode, ScalingPolicySpec

_LIMIT_TEXT = {
    DecisionReason.SCALE_UP_LIMIT: "scale-up rate limit",
    DecisionReason.SCALE_DOWN_LIMIT: "scale-down rate limit",
    DecisionReason.TOO_MANY_REPLICAS: "maxReplicas",
    DecisionReason.TOO_FEW_REPLICAS: "minReplicas",
}


def decide(
    spec: ScalingPolicySpec,
    observation: Observation,
    history: ScalingHistory,
    *,
    now: float,
) -> Decision:
    """Desired replicas for this cycle, the reason, a message, and the history to keep."""
    observation = wake.with_wake_request(observation, history, now=now)
    history = replace(history, learned_startup_seconds=startup.learn(spec, history, observation))
    estimate = startup.estimate(spec, history)
    history = history.pruned(
        now=now, horizon_seconds=max(spec.history_horizon_seconds, estimate + SLO_SETTLE_SECONDS)
    )
    current = observation.spec_replicas
    on_the_way = startup.on_the_way(observation, estimate)
    cap = guard.waiting_cap(history, observation, on_the_way=on_the_way, now=now)
    history = replace(history, last_active_time=_last_active(history, observation, now))

    bounded = _out_of_bounds(spec, observation)
    if bounded is not None:
        return _finish(observation, history, bounded, bounded.replicas, cap, on_the_way, now=now)

    if observation.load is None:
        history = replace(history, missing_cycles=history.missing_cycles + 1)
        proposal = _without_load(spec, observation, history, settling=on_the_way > 0)
        if proposal is None:
            held = Proposal(current, DecisionReason.MISSING_METRICS, _missing_text(spec))
            return _finish(observation, history, held, current, cap, on_the_way, now=now)
    else:
        guarded = guarded_load(observation, cap)
        history = _with_load_sample(spec, history, guarded, now=now)
        settling = on_the_way > 0 or _recently_scaled_up(history, estimate, now)
        if arrivals.usable(spec, observation):
            history, proposal = _with_arrivals(
                spec, observation, history, guarded, estimate, on_the_way, settling, now=now
            )
        else:
            expected = forecast.expected_load(
                history.loads,
                now=now,
                average_window=spec.load_window_seconds,
                trend_window=spec.trend_window_seconds,
                horizon=estimate,
            )
            proposal = _with_load(
                spec, observation, history, expected, on_the_way, settling, now=now
            )

    if not history.recommendations:
        # As the HPA does for a new autoscaler: a fresh start must not scale down at once.
        history = replace(history, recommendations=(Recommendation(now, current),))
    stabilized = behavior.stabilize(
        proposal.replicas,
        current=current,
        recommendations=history.recommendations,
        spec=spec,
        now=now,
    )
    min_allowed = 0 if proposal.reason is DecisionReason.IDLE_SCALE_TO_ZERO else spec.min_replicas
    if current == 0 and proposal.replicas == 0:
        min_allowed = 0
    final, limit = behavior.limit_rate(
        stabilized,
        current=current,
        events=history.scale_events,
        spec=spec,
        min_allowed=min_allowed,
        now=now,
    )
    history = replace(
        history,
        recommendations=(*history.recommendations, Recommendation(now, proposal.replicas)),
    )
    explained = _explain(proposal, stabilized, limit)
    return _finish(observation, history, explained, final, cap, on_the_way, now=now, raw=proposal)


def _with_load(
    spec: ScalingPolicySpec,
    observation: Observation,
    history: ScalingHistory,
    expected: float,
    on_the_way: int,
    settling: bool,
    *,
    now: float,
) -> Proposal:
    """Recommendation when in-flight load is known; `expected` is the load to size for."""
    load = observation.load or 0.0
    if observation.spec_replicas == 0:
        if load > 0:
            wanted = max(spec.min_replicas, ceil(load / spec.target_per_replica))
            message = f"{load:g} requests waiting"
            rate, per_replica = observation.front_arrivals_per_second, spec.rate_at_target
            if rate and per_replica and ceil(rate / per_replica) > wanted:
                # the arrivals at the activator say what the queue will be by the time the
                # replicas are up: the leading signal that a count of held requests is not
                wanted = ceil(rate / per_replica)
                message += f", {rate:.2f} requests/s arriving"
            return Proposal(min(wanted, spec.max_replicas), DecisionReason.ACTIVATE_FROM_ZERO,
                            message)
        return Proposal(0, DecisionReason.IDLE_SCALE_TO_ZERO, "no requests: staying at zero")
    proposal = from_load(spec, observation, load=expected, on_the_way=on_the_way)
    return _secondary(proposal, spec, observation, history, settling, now=now)


def _with_arrivals(
    spec: ScalingPolicySpec,
    observation: Observation,
    history: ScalingHistory,
    guarded: float,
    estimate: float,
    on_the_way: int,
    settling: bool,
    *,
    now: float,
) -> tuple[ScalingHistory, Proposal]:
    """Recommendation from the arrival rate, the backlog term and the learned headroom.

    The rate is the engines' (completions plus the change of in-flight), never below the
    front door's arrival count where the activator reports one; without a completion
    counter it is the front door's alone (`arrivals.usable` allows that only where the
    activator sees every request).
    """
    load = observation.load or 0.0
    completions = observation.completions_per_second
    front = observation.front_arrivals_per_second
    engines = None if completions is None else arrivals.estimate(
        history.arrivals, now=now, in_flight=load, completions=completions)
    rate = arrivals.counted(engines, front)
    reaction = volatility.reaction_seconds(
        estimate, scrape=spec.scrape_interval_seconds, period=spec.period_seconds
    )
    keep = max(reaction, arrivals.WINDOW_SECONDS)
    samples = (*(s for s in history.arrivals if now - s[0] < keep), (now, load, rate))
    rates = [(t, r) for t, _, r in samples]
    per_replica = spec.rate_at_target or 1.0
    learned = volatility.observe(
        history.volatility, rates, now=now, reaction=reaction, per_replica=per_replica
    )
    history = replace(history, arrivals=samples, volatility=learned)
    # Learned from the window's rate, sized for the leading one; but not while replicas
    # that turned ready since a scale-up fill up with in-flight requests (they complete
    # nothing at first, which the minute's completion rate is slow to show).
    holders = history.backlog_holders
    if completions is not None and (holders is None or observation.ready_replicas <= holders):
        rate = arrivals.counted(arrivals.leading(
            samples[:-1], now=now, in_flight=load, completions=completions), front)
    queued = arrivals.backlog(spec, observation, rate=rate, load=guarded)
    # The whole backlog, past the guard's cap, on the replicas that were there when it
    # built: the ones it holds are no capacity for the rate, however it was counted.
    holders = holders if holders is not None else observation.ready_replicas
    clogged = arrivals.clogged(
        spec,
        backlog=arrivals.backlog(spec, observation, rate=rate, load=load),
        reaction_seconds=reaction,
        holders=holders,
    )
    history = _backlog_state(
        history, observation, holders, clogged, on_the_way, spec=spec, now=now
    )
    stepped = arrivals.staggered(
        spec, observation, rate=rate, clogged=clogged, startup_seconds=estimate,
        reaction_seconds=reaction,
    )
    # A backlog the ready replicas clear within a reaction time, were the burst over now,
    # is over before anything asked now serves: no drain, no staggered queue for it.
    low = volatility.low(rates, now=now, span=reaction)
    drained = queued
    if not arrivals.outlasts(spec, observation, queued=queued, low=low if low is not None
                             else rate, clogged=clogged, reaction_seconds=reaction):
        drained, stepped = 0.0, 0.0
    proposal = arrivals.propose(
        spec, observation, rate=rate, queued=drained, reaction_seconds=reaction,
        on_the_way=on_the_way, clogged=clogged, staggered=stepped,
    )
    proposal = _headroom(proposal, spec, learned, rates, reaction=reaction, now=now)
    # A TTFT breach while the ready replicas carry the arrival rate is a backlog draining
    # from the replicas that hold it: more replicas would not serve it sooner.
    carried = observation.ready_replicas * per_replica * (1 + spec.tolerance) >= rate
    draining = carried and queued > 0
    # Nor does a TTFT over target from a backlog that whole replicas hold veto removing
    # replicas the proposal does not count on: they would not serve it sooner.
    held = carried and history.backlog_until is not None
    return history, _secondary(
        proposal, spec, observation, history, settling or draining, now=now, held=held
    )


def _backlog_state(
    history: ScalingHistory,
    observation: Observation,
    holders: int,
    clogged: float,
    on_the_way: int,
    *,
    spec: ScalingPolicySpec,
    now: float,
) -> ScalingHistory:
    """Remember who holds a burst's backlog while replicas start or it holds whole ones,
    and, once it held whole ones, until when latencies may still be its own."""
    until = history.backlog_until
    if clogged >= 1.0 or (until is not None and (observation.waiting or 0.0) > 0):
        # The TTFT window holds the backlog's latencies one rate window (and the metrics
        # delay) after the last of it was taken into a batch.
        until = now + arrivals.WINDOW_SECONDS + spec.scrape_interval_seconds
    elif until is not None and now >= until:
        until = None
    keep = on_the_way > 0 or clogged >= 1.0
    return replace(history, backlog_holders=holders if keep else None, backlog_until=until)


def _headroom(
    proposal: Proposal,
    spec: ScalingPolicySpec,
    learned: volatility.Volatility,
    rates: list[tuple[float, float]],
    *,
    reaction: float,
    now: float,
) -> Proposal:
    """Never fewer replicas than the learned rise from the recent low needs."""
    # At the top of the tolerance band: a rise within the learned amplitude then stays
    # inside the band, held rather than chased.
    top = (spec.rate_at_target or 1.0) * (1 + spec.tolerance)
    replicas, held, rise = volatility.floor(
        learned, rates, now=now, reaction=reaction, per_replica=top
    )
    replicas = min(replicas, spec.max_replicas)
    if replicas <= proposal.replicas:
        return proposal
    return Proposal(
        replicas,
        DecisionReason.VOLATILITY_HEADROOM,
        f"{proposal.message}; headroom for a {rise:.2f}x rise within {reaction:.0f} s "
        f"({held:.1f} requests/s): {replicas} kept",
    )


def _secondary(
    proposal: Proposal,
    spec: ScalingPolicySpec,
    observation: Observation,
    history: ScalingHistory,
    settling: bool,
    *,
    now: float,
    held: bool = False,
) -> Proposal:
    """The SLO push, the prompt-token floor, the scale-down vetoes, and scale to zero.

    `held`: latencies are a backlog's that whole replicas hold (or held a moment ago),
    while the others carry the rate; they neither push nor veto.
    """
    load = observation.load or 0.0
    if not held:
        proposal = slo_push(proposal, spec, observation, settling=settling)
    proposal = prefill_floor(proposal, spec, observation)
    proposal = veto_scale_down(proposal, spec, observation, latency=not held)
    idle_since = history.last_active_time if history.last_active_time is not None else now
    if spec.scale_to_zero and load == 0 and now - idle_since >= spec.idle_seconds:
        return Proposal(
            0, DecisionReason.IDLE_SCALE_TO_ZERO, f"no requests for {now - idle_since:.0f} s"
        )
    return proposal


def _without_load(
    spec: ScalingPolicySpec, observation: Observation, history: ScalingHistory, *, settling: bool
) -> Proposal | None:
    """Recommendation without load metrics; `None` means hold as we are."""
    current = observation.spec_replicas
    mode = spec.on_missing_metrics
    if mode is MissingMetricsMode.SCALE_UP_ONLY:
        proposal = Proposal(
            current, DecisionReason.MISSING_METRICS_SCALE_UP_ONLY, _missing_text(spec)
        )
        known = lower_bound_load(observation)
        if known is not None and observation.reporting > 0:
            wanted = ceil(known / spec.target_per_replica)
            if wanted > current:
                proposal = Proposal(
                    wanted,
                    DecisionReason.MISSING_METRICS_SCALE_UP_ONLY,
                    f"at least {known:g} in-flight requests (partial metrics): {wanted} wanted",
                )
        return slo_push(proposal, spec, observation, settling=settling)
    if wake.idled_to_zero(spec, observation, history):
        # The fallback is for load we cannot see; at zero after idling there is none to
        # see (no replica exports series): waking it here idled it back, in a loop.
        return Proposal(0, DecisionReason.IDLE_SCALE_TO_ZERO,
                        "at zero since the last idle spell: no replica to report load, and "
                        "no request held by the activator")
    if mode is MissingMetricsMode.FALLBACK and history.missing_cycles >= spec.fallback_after_cycles:
        replicas = spec.fallback_replicas or 0
        return Proposal(
            replicas,
            DecisionReason.MISSING_METRICS_FALLBACK,
            f"load metrics missing for {history.missing_cycles} cycles: fallback to {replicas}",
        )
    return None


def _out_of_bounds(spec: ScalingPolicySpec, observation: Observation) -> Proposal | None:
    """Like the HPA, bring replicas inside min/max before looking at metrics."""
    current = observation.spec_replicas
    if current > spec.max_replicas:
        return Proposal(
            spec.max_replicas,
            DecisionReason.TOO_MANY_REPLICAS,
            f"above maxReplicas {spec.max_replicas}",
        )
    if current < spec.min_replicas and not (current == 0 and spec.scale_to_zero):
        return Proposal(
            spec.min_replicas,
            DecisionReason.TOO_FEW_REPLICAS,
            f"below minReplicas {spec.min_replicas}",
        )
    return None


def _explain(proposal: Proposal, stabilized: int, limit: DecisionReason | None) -> Proposal:
    """The reason that explains the final count: a limit, a window, or the metrics."""
    if limit is not None:
        return Proposal(
            proposal.replicas, limit, f"{proposal.message}; limited by {_LIMIT_TEXT[limit]}"
        )
    if stabilized > proposal.replicas:
        return Proposal(
            proposal.replicas,
            DecisionReason.SCALE_DOWN_STABILIZED,
            f"{proposal.message}; held by a higher recommendation in the scale-down window",
        )
    if stabilized < proposal.replicas:
        return Proposal(
            proposal.replicas,
            DecisionReason.SCALE_UP_STABILIZED,
            f"{proposal.message}; held by a lower recommendation in the scale-up window",
        )
    return proposal


def _finish(
    observation: Observation,
    history: ScalingHistory,
    explained: Proposal,
    final: int,
    cap: float | None,
    on_the_way: int,
    *,
    now: float,
    raw: Proposal | None = None,
) -> Decision:
    """Record the scale event and guard state, and build the decision."""
    current = observation.spec_replicas
    if final != current:
        event = ScaleEvent(now, current, final)
        zero_since = now if final == 0 else None
        history = replace(history, scale_events=(*history.scale_events, event),
                          zero_since=zero_since)
    history = guard.after(
        history, observation, cap=cap, on_the_way=on_the_way, scaled_up=final > current, now=now
    )
    message = (
        f"{current} -> {final}: {explained.message}" if final != current else explained.message
    )
    recommendation = (raw or explained).replicas
    return Decision(final, explained.reason, message, history, recommendation)


def _with_load_sample(
    spec: ScalingPolicySpec, history: ScalingHistory, load: float, *, now: float
) -> ScalingHistory:
    """Keep this cycle's load and those within the averaging window; reset missing count."""
    keep = max(spec.load_window_seconds, spec.trend_window_seconds)
    recent = tuple((t, v) for t, v in history.loads if now - t < keep)
    return replace(history, loads=(*recent, (now, load)), missing_cycles=0)


def _last_active(history: ScalingHistory, observation: Observation, now: float) -> float:
    """Unknown load counts as activity: never go idle on data we do not have."""
    load = observation.load
    if load is None or load > 0 or history.last_active_time is None:
        return now
    return history.last_active_time


def _recently_scaled_up(history: ScalingHistory, estimate: float, now: float) -> bool:
    last = history.last_scale_up_time()
    return last is not None and now - last < estimate + SLO_SETTLE_SECONDS


def _missing_text(spec: ScalingPolicySpec) -> str:
    return f"load metrics missing or stale: onMissingMetrics={spec.on_missing_metrics.value}"
