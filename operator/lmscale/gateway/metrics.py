"""The activator's per-model series on /metrics (its own registry, not the process default)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Holds last from milliseconds (a ready backend) to minutes (a cold start with weights to load).
WAIT_BUCKETS = (0.001, 0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class GatewayMetrics:
    """Requests waiting, arrivals, forwarded, timed out, rejected and the wait time, per model."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.waiting = Gauge("lmscale_gateway_requests_waiting",
                             "Requests held for a model with no ready backend.", ["model"],
                             registry=r)
        self.arrivals = Counter("lmscale_gateway_arrivals",
                                "Requests that arrived for a model.", ["model"], registry=r)
        self.forwarded = Counter("lmscale_gateway_forwarded",
                                 "Requests sent on to a backend.", ["model"], registry=r)
        self.timed_out = Counter("lmscale_gateway_timed_out",
                                 "Held requests answered 503 at the hold timeout.", ["model"],
                                 registry=r)
        self.rejected = Counter("lmscale_gateway_rejected",
                                "Requests answered 503 with Retry-After, by reason "
                                "(queue_full, timeout, shutdown).", ["model", "reason"],
                                registry=r)
        self.abandoned = Counter("lmscale_gateway_abandoned",
                                 "Held requests whose client hung up before a backend was ready.",
                                 ["model"], registry=r)
        self.upstream_errors = Counter("lmscale_gateway_upstream_errors",
                                       "Forwarded requests whose backend failed before answering "
                                       "(answered 502, or held again when none was left).",
                                       ["model"], registry=r)
        self.wait_seconds = Histogram("lmscale_gateway_wait_seconds",
                                      "Time from arrival to forwarding (or to the 503).",
                                      ["model"], buckets=WAIT_BUCKETS, registry=r)
        self.ready_backends = Gauge("lmscale_gateway_ready_backends",
                                    "Backends of a model whose readiness probe passes.",
                                    ["model"], registry=r)

    def declare(self, model: str) -> None:
        """Every series from the start at zero, so a rate() over a fresh activator works."""
        self.waiting.labels(model)
        self.arrivals.labels(model)
        self.forwarded.labels(model)
        self.timed_out.labels(model)
        for reason in ("queue_full", "timeout", "shutdown"):
            self.rejected.labels(model, reason)
        self.upstream_errors.labels(model)
        self.abandoned.labels(model)
        self.wait_seconds.labels(model)
        self.ready_backends.labels(model).set(0)
