"""Scaling state that must survive an operator restart, kept as JSON in an annotation.

The HPA keeps this in process memory and forgets it on restart (style guide); here it is
a value passed in and returned by `decide`, with a compact, versioned JSON form.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from lmscale.policy.volatility import Volatility, headroom

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Recommendation:
    """An unstabilized recommendation made at `time` (seconds, same clock as `now`)."""

    time: float
    replicas: int


@dataclass(frozen=True)
class ScaleEvent:
    """A change of the Deployment's replicas decided at `time`."""

    time: float
    from_replicas: int
    to_replicas: int

    @property
    def change(self) -> int:
        return self.to_replicas - self.from_replicas


@dataclass(frozen=True)
class ScalingHistory:
    """Recent recommendations and scale events, plus learned and guard state.

    - `learned_startup_seconds`: start-up time learned from readiness (`None`: use the
      planner's estimate).
    - `last_active_time`: when load was last seen above zero (scale to zero).
    - `missing_cycles`: consecutive cycles without load metrics (fallback threshold).
    - `guard_waiting`, `guard_until`: waiting requests when the scale-up now under way
      was decided, and when the guard ends (see `lmscale.policy.guard`).
    - `loads`: recent `(time, in-flight load)` samples the load signal is averaged over.
    - `arrivals`: recent `(time, in-flight, arrival rate)` samples (`policy.arrivals`).
    - `volatility`: the learned rise within one reaction time (`policy.volatility`).
    - `zero_since`: when the policy last scaled the model to zero, while it is there (kept
      past the horizon: scale from zero reads it, `policy.wake`).
    - `backlog_holders`: replicas that were ready when a burst's backlog built, while it
      still holds them (`policy.arrivals.clogged`); `backlog_until`: until when latencies
      may still be that backlog's.
    """

    recommendations: tuple[Recommendation, ...] = ()
    scale_events: tuple[ScaleEvent, ...] = ()
    learned_startup_seconds: float | None = None
    last_active_time: float | None = None
    missing_cycles: int = 0
    guard_waiting: float | None = None
    guard_until: float | None = None
    loads: tuple[tuple[float, float], ...] = ()
    arrivals: tuple[tuple[float, float, float], ...] = ()
    volatility: Volatility = Volatility()
    zero_since: float | None = None
    backlog_holders: int | None = None
    backlog_until: float | None = None

    def pruned(self, *, now: float, horizon_seconds: float) -> ScalingHistory:
        """Drop entries too old to affect any window or rate rule."""
        cutoff = now - horizon_seconds
        return replace(
            self,
            recommendations=tuple(r for r in self.recommendations if r.time > cutoff),
            scale_events=tuple(e for e in self.scale_events if e.time > cutoff),
        )

    def last_scale_up_time(self) -> float | None:
        """When the fleet last grew, if still remembered."""
        times = [e.time for e in self.scale_events if e.change > 0]
        return max(times, default=None)

    def to_json(self) -> str:
        """Compact JSON for an annotation (well under its size limit at 10 s cycles)."""
        body: dict[str, Any] = {
            "v": FORMAT_VERSION,
            "recs": [[_t(r.time), r.replicas] for r in self.recommendations],
            "events": [[_t(e.time), e.from_replicas, e.to_replicas] for e in self.scale_events],
            "startup": self.learned_startup_seconds,
            "active": self.last_active_time,
            "missing": self.missing_cycles,
            "guard": self.guard_waiting,
            "guard_until": self.guard_until,
            "loads": [[_t(t), round(v, 2)] for t, v in self.loads],
        }
        if self.arrivals:
            body["arrivals"] = [[_t(t), round(n, 1), round(r, 3)] for t, n, r in self.arrivals]
        if self.zero_since is not None:
            body["zero"] = _t(self.zero_since)
        if self.backlog_until is not None:
            body["backlog"] = [self.backlog_holders, _t(self.backlog_until)]
        vol = self.volatility
        if vol.slot is not None:
            # The learned rise, for people (`headroom`), then what it is learned from.
            body["volatility"] = {
                "headroom": headroom(vol), "slot": vol.slot, "peak": vol.peak,
                "weights": list(vol.weights),
            }
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ScalingHistory:
        """Parse `to_json` output; raises `ValueError` on anything malformed."""
        try:
            body = json.loads(text)
            if not isinstance(body, dict) or body.get("v") != FORMAT_VERSION:
                raise ValueError(f"unsupported scaling history version: {body.get('v')!r}")
            return cls(
                recommendations=tuple(
                    Recommendation(float(t), int(n)) for t, n in body.get("recs", [])
                ),
                scale_events=tuple(
                    ScaleEvent(float(t), int(a), int(b)) for t, a, b in body.get("events", [])
                ),
                learned_startup_seconds=_opt_float(body.get("startup")),
                last_active_time=_opt_float(body.get("active")),
                missing_cycles=int(body.get("missing", 0)),
                guard_waiting=_opt_float(body.get("guard")),
                guard_until=_opt_float(body.get("guard_until")),
                loads=tuple((float(t), float(v)) for t, v in body.get("loads", [])),
                arrivals=tuple(
                    (float(t), float(n), float(r)) for t, n, r in body.get("arrivals", [])
                ),
                volatility=_volatility(body.get("volatility")),
                zero_since=_opt_float(body.get("zero")),
                backlog_holders=_opt_int(body.get("backlog", [None])[0]),
                backlog_until=_opt_float(body.get("backlog", [None, None])[1]),
            )
        except (TypeError, AttributeError, KeyError, json.JSONDecodeError) as error:
            raise ValueError(f"malformed scaling history: {error}") from error


def _volatility(value: object) -> Volatility:
    if value is None:
        return Volatility()
    if not isinstance(value, dict):
        raise TypeError(f"expected an object for volatility, got {value!r}")
    return Volatility(
        weights=tuple(float(w) for w in value.get("weights", [])),
        slot=int(value["slot"]),
        peak=float(value.get("peak", 0.0)),
    )


def _t(value: float) -> float:
    return round(value, 3)


def _opt_int(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int | str):
        raise TypeError(f"expected an integer, got {value!r}")
    return int(value)


def _opt_float(value: object) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float | str):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)
