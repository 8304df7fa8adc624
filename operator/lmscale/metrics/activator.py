"""The activator's own series as load signals: requests held, and arrivals per second.

The activator labels its series `model="<namespace>/<name>"` for the models it learns from
the cluster; summing over that label adds up its replicas. Two queries per cycle, whatever
the number of models. A model absent from the answer is one the activator does not report
(None, never 0): at zero that is what leaves the missing-metrics policy in charge.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from lmscale.metrics import parse, promql
from lmscale.metrics.client import QueryError
from lmscale.metrics.results import Outcome
from lmscale.policy.observation import FrontDoor

__all__ = ["FrontDoor", "read"]

WAITING = "lmscale_gateway_requests_waiting"  # gateway/metrics.py, the activator's names
ARRIVALS = "lmscale_gateway_arrivals_total"
MODEL_LABEL = "model"
Key = tuple[str, str]


class QueryClient(Protocol):
    def query(self, promql: str, *, now: float) -> Any: ...


def _selector(name: str) -> str:
    return f'{name}{{{MODEL_LABEL}=~".+/.+"}}'


def waiting_query(ctx: promql.QueryContext) -> str:
    sel = _selector(WAITING)
    return f"sum by ({MODEL_LABEL}) ({promql.fresh(sel, sel, ctx)})"


def arrivals_query(ctx: promql.QueryContext) -> str:
    sel = _selector(ARRIVALS)
    window = f"{max(1, round(ctx.rate_window_seconds))}s"
    return f"sum by ({MODEL_LABEL}) ({promql.fresh(f'rate({sel}[{window}])', sel, ctx)})"


def values(result: Any, *, now: float, max_age: float) -> dict[Key, float]:
    """`namespace/name` -> value from an instant vector; unusable samples are left out."""
    out: dict[Key, float] = {}
    if not isinstance(result, list):
        return out
    for item in result:
        if not isinstance(item, Mapping):
            continue
        model = (item.get("metric") or {}).get(MODEL_LABEL)
        namespace, sep, name = str(model or "").partition("/")
        if not sep or not namespace or not name:
            continue
        try:
            timestamp, value = parse.parse_sample(item.get("value"))
        except parse.MalformedSampleError:
            continue
        if parse.classify(timestamp, value, now=now, max_age=max_age) is Outcome.OK:
            out[(namespace, name)] = value
    return out


def read(client: QueryClient, ctx: promql.QueryContext, *, now: float) -> dict[Key, FrontDoor]:
    """Both signals per model; an unreachable Prometheus reads as the activator silent."""
    try:
        held = values(client.query(waiting_query(ctx), now=now), now=now,
                      max_age=ctx.max_age_seconds)
        rates = values(client.query(arrivals_query(ctx), now=now), now=now,
                       max_age=ctx.max_age_seconds)
    except QueryError:
        return {}
    return {key: FrontDoor(held.get(key), rates.get(key)) for key in set(held) | set(rates)}
