"""Pure PromQL builders shared by the metric sources.

Every expression aggregates to one series per deployment, labelled with exactly the
namespace and deployment labels, so one query answers for all deployments at once.

Staleness: an instant query returns the evaluation time as each result's timestamp, not the
age of the samples behind it, and Prometheus looks back five minutes by default. So each
selector is filtered in the query itself: a series counts only while its newest sample is at
most `max_age_seconds` older than the evaluation time (the `now` the scaler passes in).
The parser then checks the result timestamps against `now` as well.
"""

from __future__ import annotations

import dataclasses

from lmscale.settings import MetricsSettings

ENGINE_LABEL = "lmscale_engine"


@dataclasses.dataclass(frozen=True)
class QueryContext:
    """Label names and windows every expression is built with."""

    namespace_label: str = "namespace"
    pod_label: str = "pod"
    deployment_label: str = "lmscale_dev_deployment"
    dcgm_namespace_label: str | None = None  # None: namespace_label
    dcgm_pod_label: str | None = None  # None: pod_label
    max_age_seconds: float = 60.0
    rate_window_seconds: float = 60.0  # rate() window: TTFT histograms, token counters
    quantile: float = 0.95
    namespaces: tuple[str, ...] = ()  # empty: all namespaces

    @classmethod
    def from_settings(
        cls,
        settings: MetricsSettings,
        *,
        namespaces: tuple[str, ...] = (),
        rate_window_seconds: float = 60.0,
    ) -> QueryContext:
        return cls(
            namespace_label=settings.namespace_label,
            pod_label=settings.pod_label,
            deployment_label=settings.deployment_label,
            dcgm_namespace_label=settings.dcgm_namespace_label,
            dcgm_pod_label=settings.dcgm_pod_label,
            max_age_seconds=settings.max_age_seconds,
            rate_window_seconds=rate_window_seconds,
            namespaces=namespaces,
        )

    @property
    def group(self) -> str:
        """The grouping clause: one series per (namespace, deployment)."""
        return f"{self.namespace_label}, {self.deployment_label}"


def selector(name: str, ctx: QueryContext, *, matchers: str = "", pods: bool = False) -> str:
    """`name{...}` restricted to series that belong to a deployment (or, for pods, to a pod)."""
    parts = (
        [f'{ctx.deployment_label}!=""']
        if not pods
        else [
            f'{ctx.namespace_label}!=""',
            f'{ctx.pod_label}!=""',
        ]
    )
    if ctx.namespaces:
        parts.append(f'{ctx.namespace_label}=~"{"|".join(ctx.namespaces)}"')
    if matchers:
        parts.append(matchers)
    return f"{name}{{{', '.join(parts)}}}"


def fresh(expr: str, sel: str, ctx: QueryContext) -> str:
    """`expr`, keeping only series whose newest sample in `sel` is recent enough."""
    return f"({expr} and (time() - timestamp({sel})) <= {_number(ctx.max_age_seconds)})"


def fresh_series(sel: str, ctx: QueryContext) -> str:
    return fresh(sel, sel, ctx)


def first_of(names: tuple[str, ...], ctx: QueryContext) -> str:
    """Per series, the first of several names a pod exports (renamed metrics: new, then old)."""
    return " or ".join(fresh_series(selector(n, ctx), ctx) for n in names)


def sum_by_deployment(names: tuple[str, ...], ctx: QueryContext) -> str:
    """Total over a deployment's pods: counts such as waiting requests."""
    return f"sum by ({ctx.group}) ({first_of(names, ctx)})"


def avg_by_deployment(names: tuple[str, ...], ctx: QueryContext) -> str:
    """Mean over a deployment's pods: ratios such as KV-cache use."""
    return f"avg by ({ctx.group}) ({first_of(names, ctx)})"


def count_by_deployment(names: tuple[str, ...], ctx: QueryContext) -> str:
    """How many pods of a deployment export a fresh series: the pods that reported."""
    return f"count by ({ctx.group}) ({first_of(names, ctx)})"


def rate_sum_by_deployment(names: tuple[str, ...], ctx: QueryContext) -> str:
    """Per-second increase of a counter, summed over a deployment's pods (first name found)."""
    rates = " or ".join(
        fresh(f"rate({sel}[{_duration(ctx.rate_window_seconds)}])", sel, ctx)
        for sel in (selector(n, ctx) for n in names)
    )
    return f"sum by ({ctx.group}) ({rates})"


def histogram_quantile(histogram: str, ctx: QueryContext, *, matchers: str = "") -> str:
    """The quantile of a histogram over all pods of a deployment, from the rate of its buckets."""
    sel = selector(f"{histogram}_bucket", ctx, matchers=matchers)
    rate = f"rate({sel}[{_duration(ctx.rate_window_seconds)}])"
    buckets = f"sum by (le, {ctx.group}) ({fresh(rate, sel, ctx)})"
    return f"histogram_quantile({_number(ctx.quantile)}, {buckets})"


def first_quantile(histograms: tuple[str, ...], ctx: QueryContext) -> str:
    """The quantile of the first of several histogram names a deployment exports.

    Per deployment, not per pod: a fleet halfway through an engine upgrade reads the new
    name where any pod exports it (the old pods' samples are then left out).
    """
    return " or ".join(histogram_quantile(name, ctx) for name in histograms)


def pod_deployments(name: str, ctx: QueryContext) -> str:
    """One series per serving pod, carrying its deployment label: the join table for DCGM."""
    sel = selector(name, ctx)
    labels = f"{ctx.namespace_label}, {ctx.pod_label}, {ctx.deployment_label}"
    return f"group by ({labels}) ({fresh_series(sel, ctx)})"


def tag_engine(expr: str, engine: str) -> str:
    """Label an engine's answer so engines can share one query and each answer stays its own."""
    return f'label_replace({expr}, "{ENGINE_LABEL}", "{engine}", "", "")'


def union(expressions: list[str]) -> str:
    """One query from several engines' expressions; their engine labels keep them apart."""
    return " or ".join(expressions)


def _number(value: float) -> str:
    return repr(float(value)) if value != int(value) else str(int(value))


def _duration(seconds: float) -> str:
    # PromQL durations take integers only; sub-second windows fall back to milliseconds.
    millis = max(1, round(seconds * 1000))
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"
