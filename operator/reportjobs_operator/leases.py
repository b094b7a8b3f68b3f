"""coordination.k8s.io/v1 Lease records and their rules (pure: client-go's leader election).

Expiry is judged on the local monotonic clock: a lease may be taken when its record has not
changed for leaseDurationSeconds since this process first saw it, so clocks of pods never
compare. A holder acts only until `renew_deadline` after it sent its last successful renewal,
which is before anyone may take the lease (docs/design.md, fencing).
"""

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reportjobs_model.timestamps import parse_rfc3339

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseTerms:
    identity: str
    duration_seconds: int

    @property
    def renew_deadline(self) -> float:
        """A holder acts for this long after sending a renewal that succeeded (< duration)."""
        return self.duration_seconds * 2 / 3

    @property
    def retry_period(self) -> float:
        """Between renewals: three chances within the renew deadline."""
        return max(1.0, self.duration_seconds / 5)


def micro_time(moment: datetime) -> str:
    """A MicroTime as the API server parses it (RFC 3339 with six fraction digits)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def spec_of(lease: Mapping[str, Any] | None) -> Mapping[str, Any]:
    spec: Mapping[str, Any] = (lease or {}).get("spec") or {}
    return spec


def holder_of(lease: Mapping[str, Any] | None) -> str | None:
    holder = spec_of(lease).get("holderIdentity")
    return str(holder) if holder else None


def may_take(spec: Mapping[str, Any], *, identity: str, unchanged_for: float) -> bool:
    """Free, ours, or not renewed within its duration (as observed locally)."""
    holder = spec.get("holderIdentity")
    duration = float(spec.get("leaseDurationSeconds") or 0)
    return not holder or holder == identity or unchanged_for >= duration


def next_spec(previous: Mapping[str, Any] | None, *, terms: LeaseTerms, now: datetime) -> Obj:
    """The spec that makes `terms.identity` the holder, renewed `now`."""
    previous = previous or {}
    ours = previous.get("holderIdentity") == terms.identity
    transitions = int(previous.get("leaseTransitions") or 0)
    acquired = previous.get("acquireTime") if ours else None
    return {
        "holderIdentity": terms.identity,
        "leaseDurationSeconds": terms.duration_seconds,
        "acquireTime": micro_time(parse_rfc3339(acquired) if acquired else now),
        "renewTime": micro_time(now),
        "leaseTransitions": transitions if ours or not previous else transitions + 1,
    }


def released_spec(previous: Mapping[str, Any], *, terms: LeaseTerms, now: datetime) -> Obj:
    """Handed over at once (a graceful stop or a rebalance): no holder, duration 1 s."""
    released = next_spec(previous, terms=terms, now=now)
    del released["holderIdentity"]
    released["leaseDurationSeconds"] = 1
    return released


def lease_body(*, name: str, namespace: str, labels: Mapping[str, str], spec: Obj) -> Obj:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": spec,
    }


class Observations:
    """How long (locally) each lease's record has been seen unchanged."""

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._seen: dict[str, tuple[tuple[Any, ...], float]] = {}

    def observe(self, lease: Mapping[str, Any]) -> float:
        """Record this version of the lease; seconds it has been unchanged."""
        metadata = lease.get("metadata") or {}
        spec = spec_of(lease)
        record = (
            metadata.get("uid"),
            metadata.get("resourceVersion"),
            spec.get("holderIdentity"),
            spec.get("renewTime"),
        )
        name = str(metadata.get("name"))
        now = self._monotonic()
        seen = self._seen.get(name)
        if seen is None or seen[0] != record:
            self._seen[name] = (record, now)
            return 0.0
        return now - seen[1]

    def forget_except(self, names: set[str]) -> None:
        for name in [name for name in self._seen if name not in names]:
            del self._seen[name]


@dataclass(slots=True)
class Fence:
    """Whether this replica may still act on one shard: until `renew_deadline` after the send
    of its last renewal that succeeded, and not after it let go."""

    terms: LeaseTerms
    monotonic: Callable[[], float] = time.monotonic
    valid_until: float = 0.0
    revoked: bool = field(default=False)

    def renewed(self, *, sent_at: float) -> None:
        """A write of the lease sent at `sent_at` (monotonic) succeeded."""
        self.valid_until = max(self.valid_until, sent_at + self.terms.renew_deadline)

    def revoke(self) -> None:
        self.revoked = True

    def holds(self) -> bool:
        return not self.revoked and self.monotonic() < self.valid_until
