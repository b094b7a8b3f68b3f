"""Every version of a namespace's shard Leases, by a watch kept for a whole test: who handed
which shard to whom, and how.

A poll (`shards.HolderLog`) can miss a version that lasted less than its interval, such as a
released Lease taken on the next round; a watch is sent every version the API server commits,
in order. The operator (operator/reportjobs_operator/leases.py) writes three kinds of version:
a renewal (same holder), a release (no holder: it let go, on SIGTERM or over its fair share)
and a take (a new holder, `leaseTransitions` + 1). A shard moves from one pod to another either
through a release, or directly: the new holder took it because it had not changed for a lease
duration (expiry; its holder died or froze).

On any error the watch lists again and goes on from that listing, which may skip versions:
`unseen_takes` compares the takes it saw with the Leases' own `leaseTransitions`, so a history
with a gap fails the check that reads it instead of passing."""

from __future__ import annotations

import itertools
import threading
import time
from collections import defaultdict
from dataclasses import dataclass

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.e2e.support.kube import Cluster
from tests.e2e.support.shards import SHARD_LEASES


@dataclass(frozen=True)
class LeaseVersion:
    resource_version: str
    holder: str | None
    transitions: int
    seen_at: float  # time.monotonic() when the watch delivered it


@dataclass(frozen=True)
class Handover:
    """A shard held by one pod, then by another."""

    shard: int
    from_pod: str
    to_pod: str
    released: bool  # through a version without a holder: `from_pod` let go of it
    at: float  # time.monotonic() when the new holder's version was seen


def _shard(name: str) -> int:
    return int(name.rsplit("-", 1)[1])


class LeaseHistory:
    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.versions: dict[int, list[LeaseVersion]] = defaultdict(list)
        self.relists = 0  # listings after the first: moments versions could be missed
        self.errors: list[str] = []
        self._api = client.CoordinationV1Api(cluster.api)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-history", daemon=True)

    def __enter__(self) -> LeaseHistory:
        self._thread.start()
        if not self._started.wait(timeout=60):
            raise AssertionError("the Lease watch could not list the shard Leases for 60 s")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _record(self, lease: client.V1Lease) -> None:
        spec = lease.spec
        version = LeaseVersion(
            resource_version=str(lease.metadata.resource_version),
            holder=spec.holder_identity or None,
            transitions=int(spec.lease_transitions or 0),
            seen_at=time.monotonic(),
        )
        with self._lock:
            seen = self.versions[_shard(lease.metadata.name)]
            if not seen or seen[-1].resource_version != version.resource_version:
                seen.append(version)

    def _run(self) -> None:
        first = True
        while not self._stop.is_set():
            try:
                listing = self._api.list_namespaced_lease(
                    self.namespace, label_selector=SHARD_LEASES, _request_timeout=10
                )
                for lease in listing.items:
                    self._record(lease)
                if not first:
                    self.relists += 1
                first = False
                self._started.set()
                version = listing.metadata.resource_version
                while not self._stop.is_set():
                    stream = watch.Watch().stream(
                        self._api.list_namespaced_lease,
                        self.namespace,
                        label_selector=SHARD_LEASES,
                        resource_version=version,
                        timeout_seconds=5,  # come back regularly to see _stop
                        _request_timeout=15,
                    )
                    for event in stream:
                        if event["type"] == "ERROR":
                            raise ApiException(status=event["raw_object"].get("code", 0))
                        lease = event["object"]
                        self._record(lease)
                        version = lease.metadata.resource_version
            except Exception as error:  # noqa: BLE001 - list again and go on
                self.errors.append(repr(error)[:200])
                self._stop.wait(1)

    def handovers(self) -> list[Handover]:
        """Every change of a shard's holder from one pod to another, in the order seen."""
        found = []
        with self._lock:
            histories = {shard: list(seen) for shard, seen in self.versions.items()}
        for shard, seen in sorted(histories.items()):
            holder: str | None = None  # the last pod that held it
            released = False
            for version in seen:
                if version.holder is None:
                    released = released or holder is not None
                    continue
                if holder is not None and version.holder != holder:
                    found.append(
                        Handover(
                            shard=shard,
                            from_pod=holder,
                            to_pod=version.holder,
                            released=released,
                            at=version.seen_at,
                        )
                    )
                holder, released = version.holder, False
        return sorted(found, key=lambda h: h.at)

    def unseen_takes(self) -> dict[int, int]:
        """Per shard, the takes its `leaseTransitions` counted since the first version seen
        that the watch did not see (a version with a new holder, after another or none);
        empty when the watch saw them all."""
        unseen = {}
        with self._lock:
            histories = {shard: list(seen) for shard, seen in self.versions.items()}
        for shard, seen in histories.items():
            takes = sum(
                1
                for before, after in itertools.pairwise(seen)
                if after.holder is not None and after.holder != before.holder
            )
            counted = seen[-1].transitions - seen[0].transitions
            if counted != takes:
                unseen[shard] = counted - takes
        return unseen

    def held(self, pod: str, *, start: float, end: float) -> set[int]:
        """The shards whose Lease named `pod` as holder at some moment from `start` to `end`
        (time.monotonic(): the version current at `start`, and every one seen up to `end`)."""
        found = set()
        with self._lock:
            histories = {shard: list(seen) for shard, seen in self.versions.items()}
        for shard, seen in histories.items():
            current = [v for v in seen if v.seen_at <= start][-1:]
            during = [v for v in seen if start < v.seen_at <= end]
            if any(v.holder == pod for v in current + during):
                found.add(shard)
        return found

    def holders(self) -> dict[int, str | None]:
        """Each shard's holder in the last version seen."""
        with self._lock:
            return {shard: seen[-1].holder for shard, seen in self.versions.items() if seen}
