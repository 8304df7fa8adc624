"""In-flight load to request rate, through one replica's measured load curve.

Requests in flight are what the engines report, but they are not proportional to the
work: a batching engine slows down as its batch grows, so the same arrival rate shows
twice the requests in flight on half the replicas. Sized linearly on in-flight counts, a
fleet scales down, sees the in-flight count jump, scales back up, and saws. Mapping the
in-flight count per replica back to the arrival rate it implies (the curve measured on
the engine model, `lmscale.sim.calibrate`) makes the load additive again, so replicas
are sized from a rate, as the HPA's arithmetic assumes.
"""

from __future__ import annotations

from collections.abc import Sequence

Curve = Sequence[tuple[float, float]]  # (in flight per replica, requests/s per replica)


def validate(curve: Curve) -> list[str]:
    """Problems with a curve: it must rise in both coordinates."""
    problems = []
    for (x0, y0), (x1, y1) in zip(curve, curve[1:], strict=False):
        if not (x1 > x0 and y1 >= y0):
            problems.append(f"load curve must increase: ({x0}, {y0}) then ({x1}, {y1})")
            break
    if curve and (curve[0][0] <= 0 or curve[0][1] <= 0):
        problems.append("load curve points must be positive")
    return problems


def rate_of(curve: Curve, in_flight: float) -> float:
    """The per-replica rate that keeps `in_flight` requests in flight.

    Linear from the origin to the first point, then between points. Past the last point
    (overload: the queue grows) in proportion to the in-flight count, as the HPA sizes,
    so a growing queue keeps asking for replicas instead of flattening into the
    engine's top throughput.
    """
    previous = (0.0, 0.0)
    for point in curve:
        if in_flight <= point[0]:
            (x0, y0), (x1, y1) = previous, point
            return y0 + (in_flight - x0) / (x1 - x0) * (y1 - y0)
        previous = point
    x_last, y_last = previous
    return y_last * in_flight / x_last


def in_flight_of(curve: Curve, rate: float) -> float:
    """The in-flight count per replica that carries `rate` in steady state (`rate_of`'s
    inverse), at most the curve's last point: past it there is no steady state, the queue
    grows, and what sits above the last point is backlog."""
    previous = (0.0, 0.0)
    for point in curve:
        if rate <= point[1]:
            (x0, y0), (x1, y1) = previous, point
            if y1 <= y0:
                return x0
            return x0 + (rate - y0) / (y1 - y0) * (x1 - x0)
        previous = point
    return previous[0]
