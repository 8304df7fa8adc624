"""Leader election on a coordination.k8s.io Lease, the way client-go's leaderelection does it.

One operator replica holds the Lease and renews it every `retry_period`; the others try to
take it every `retry_period` and may do so only once it has gone `lease_duration` without a
renewal *as they observed it* (their own clock, so clock skew between nodes does not
matter). The holder gives up when it could not renew for `renew_deadline`, which is shorter
than `lease_duration`: it stops acting before anyone else may start. Writes are a create
(409 when someone was first) or a replace carrying the resourceVersion read (409 when
someone wrote in between), so two candidates never both win.

`kubectl get lease -n NAMESPACE NAME` shows the holder.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from lmscale.k8s import resources
from lmscale.k8s.client import ApiException, Kube

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class LeaseTiming:
    """client-go's defaults: 15 s lease, 10 s to renew, a try every 2 s."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            raise ValueError("need lease_duration > renew_deadline > retry_period > 0")


@dataclasses.dataclass(frozen=True)
class Record:
    """The part of a Lease's spec that election reads (pure)."""

    holder: str
    renew_time: str
    transitions: int

    @classmethod
    def of(cls, lease: Mapping[str, Any]) -> Record:
        spec = lease.get("spec") or {}
        return cls(holder=str(spec.get("holderIdentity") or ""),
                   renew_time=str(spec.get("renewTime") or ""),
                   transitions=int(spec.get("leaseTransitions") or 0))


def may_take(record: Record, *, identity: str, unchanged_for: float,
             lease_duration: float) -> bool:
    """Whether `identity` may write itself into the Lease (pure).

    Free when nobody holds it, when we hold it, or when the holder has not renewed for a
    whole lease duration as seen by this process.
    """
    if not record.holder or record.holder == identity:
        return True
    return unchanged_for >= lease_duration


def _micro_time(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Acquire, renew and release one Lease; `is_leader()` is safe from any thread."""

    def __init__(self, kube: Kube, *, name: str, namespace: str, identity: str,
                 timing: LeaseTiming = LeaseTiming(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.kube = kube
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.timing = timing
        self._clock = clock
        self._observed: Record | None = None
        self._observed_at = 0.0
        self._renewed_at: float | None = None  # when we last wrote ourselves in, if we hold it
        self._acquired_at: str | None = None

    # -- one attempt ---------------------------------------------------------------------

    def try_acquire_or_renew(self) -> bool:
        """One round trip (two when writing): True when we hold the Lease afterwards."""
        started = self._clock()
        timeout = min(self.timing.retry_period * 2, self.timing.renew_deadline / 2)
        now = datetime.now(UTC)
        lease = self.kube.get(resources.LEASES, namespace=self.namespace, name=self.name,
                              timeout=timeout)
        if lease is None:
            return self._write(self._manifest(None, now, transitions=0), started, create=True)
        record = Record.of(lease)
        if record != self._observed:
            self._observed, self._observed_at = record, started
        if not may_take(record, identity=self.identity,
                        unchanged_for=started - self._observed_at,
                        lease_duration=self.timing.lease_duration):
            self._renewed_at = None
            return False
        taking_over = record.holder != self.identity
        transitions = record.transitions + (1 if taking_over and record.holder else 0)
        if taking_over:
            self._acquired_at = None
        manifest = self._manifest(lease, now, transitions=transitions)
        return self._write(manifest, started, create=False)

    def _manifest(self, lease: Mapping[str, Any] | None, now: datetime, *, transitions: int
                  ) -> dict[str, Any]:
        stamp = _micro_time(now)
        if self._acquired_at is None:
            self._acquired_at = stamp
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if lease is not None:
            metadata["resourceVersion"] = lease["metadata"]["resourceVersion"]
        return {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata,
            "spec": {"holderIdentity": self.identity,
                     "leaseDurationSeconds": int(round(self.timing.lease_duration)),
                     "acquireTime": self._acquired_at, "renewTime": stamp,
                     "leaseTransitions": transitions},
        }

    def _write(self, manifest: dict[str, Any], started: float, *, create: bool) -> bool:
        timeout = min(self.timing.retry_period * 2, self.timing.renew_deadline / 2)
        try:
            if create:
                written = self.kube.create(manifest, timeout=timeout)
            else:
                written = self.kube.replace(manifest, timeout=timeout)
        except ApiException as error:
            if error.status == 409:  # another candidate wrote first: it leads
                self._renewed_at = None
                return False
            raise
        self._observed, self._observed_at = Record.of(written), started
        self._renewed_at = started
        return True

    # -- the loops -----------------------------------------------------------------------

    def is_leader(self) -> bool:
        """True only while the last renewal is younger than the renew deadline."""
        renewed = self._renewed_at
        return renewed is not None and self._clock() - renewed < self.timing.renew_deadline

    def _attempt(self) -> bool:
        try:
            return self.try_acquire_or_renew()
        except Exception as error:  # noqa: BLE001 - apiserver away: try again next period
            log.warning("lease %s/%s: %s", self.namespace, self.name, _short(error))
            return False

    def acquire(self, stop: threading.Event) -> bool:
        """Block until this process holds the Lease (True) or `stop` is set (False)."""
        log.info("waiting to lead: lease %s/%s as %s", self.namespace, self.name,
                 self.identity)
        while not stop.is_set():
            if self._attempt():
                log.info("leading: acquired lease %s/%s as %s", self.namespace, self.name,
                         self.identity)
                return True
            # Jitter, as client-go does, so candidates do not all try at the same instant.
            stop.wait(self.timing.retry_period * (1.0 + 0.2 * random.random()))
        return False

    def hold(self, stop: threading.Event, on_lost: Callable[[], None]) -> None:
        """Renew every retry period until `stop`; call `on_lost` once leadership is gone."""
        while not stop.wait(self.timing.retry_period):
            if self._attempt():
                continue
            if not self.is_leader():
                log.error("leadership lost: lease %s/%s not renewed within %.0f s",
                          self.namespace, self.name, self.timing.renew_deadline)
                on_lost()
                return

    def release(self, *, timeout: float = 2.0) -> bool:
        """Hand the Lease back (as client-go's ReleaseOnCancel) so a standby takes over at
        once instead of after a lease duration; one short try, since we may be cut off."""
        if self._renewed_at is None:
            return False
        self._renewed_at = None
        try:
            lease = self.kube.get(resources.LEASES, namespace=self.namespace, name=self.name,
                                  timeout=timeout)
            if lease is None or Record.of(lease).holder != self.identity:
                return False
            stamp = _micro_time(datetime.now(UTC))
            lease["spec"] = {**lease.get("spec", {}), "holderIdentity": None,
                             "leaseDurationSeconds": 1, "renewTime": stamp,
                             "acquireTime": stamp}
            self.kube.replace(lease, timeout=timeout)
        except Exception as error:  # noqa: BLE001 - best effort on the way out
            log.warning("lease %s/%s not released: %s", self.namespace, self.name,
                        _short(error))
            return False
        log.info("released lease %s/%s", self.namespace, self.name)
        return True


def _short(error: Exception) -> str:
    if isinstance(error, ApiException):
        return f"HTTP {error.status} {error.reason}"
    return f"{type(error).__name__}: {error}"[:200]
