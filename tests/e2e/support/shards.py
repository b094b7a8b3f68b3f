"""The operator's shard Leases as the cluster shows them, and a log of who held which shard.

Lease names and labels are the operator's (operator/reportjobs_operator/sharding.py):
`<prefix>-shard-NN` labelled reportjobs.io/lease-role=shard, holderIdentity = the pod's name."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

from kubernetes import client

from tests.e2e.support.kube import Cluster

SHARD_LEASES = "reportjobs.io/lease-role=shard"


def shard_holders(cluster: Cluster, namespace: str) -> dict[int, str | None]:
    """Shard number -> holder (None when released)."""
    leases = client.CoordinationV1Api(cluster.api).list_namespaced_lease(
        namespace, label_selector=SHARD_LEASES, _request_timeout=10
    )
    return {
        int(lease.metadata.name.rsplit("-", 1)[1]): lease.spec.holder_identity or None
        for lease in leases.items
    }


def readyz(cluster: Cluster, namespace: str, pod: str) -> dict[str, object]:
    """The operator pod's /readyz JSON (through the API server's pod proxy)."""
    response = cluster.core.connect_get_namespaced_pod_proxy_with_path(
        f"{pod}:8080", namespace, "readyz", _preload_content=False
    )
    answer: dict[str, object] = json.loads(response.data)
    return answer


def spread(cluster: Cluster, namespace: str, *, shards: int, replicas: int) -> dict[str, int]:
    """{pod: shards held} when every shard is held by one of `replicas` running operator pods,
    each holding a fair share (shards // replicas or one more) and listing exactly those in
    /readyz, all synced; else {}."""
    holders = shard_holders(cluster, namespace)
    running = {
        p.metadata.name
        for p in cluster.pods(namespace, "operator")
        if p.status.phase == "Running" and p.metadata.deletion_timestamp is None
    }
    if len(running) != replicas or set(holders) != set(range(shards)):
        return {}
    held: dict[str, list[int]] = {pod: [] for pod in running}
    for shard, holder in holders.items():
        if holder not in held:
            return {}
        held[holder].append(shard)
    if any(not shards // replicas <= len(v) <= -(-shards // replicas) for v in held.values()):
        return {}
    for pod, mine in held.items():
        report = readyz(cluster, namespace, pod)
        if sorted(mine) != report.get("shards") or report.get("shards") != report.get("synced"):
            return {}
    return {pod: len(mine) for pod, mine in held.items()}


@dataclass
class HolderLog:
    """Polls the shard Leases every `interval` s in a thread: (time.monotonic(), holders)."""

    cluster: Cluster
    namespace: str
    interval: float = 0.5
    samples: list[tuple[float, dict[int, str | None]]] = field(default_factory=list)
    errors: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="holder-log", daemon=True)

    def __enter__(self) -> HolderLog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), shard_holders(self.cluster, self.namespace)))
            except Exception:  # noqa: BLE001 - the API server may be busy; poll again
                self.errors += 1
            self._stop.wait(self.interval)

    def held_by(self, pod: str, *, at: float) -> set[int]:
        """The shards `pod` held in the last sample at or before `at`."""
        before = [holders for t, holders in self.samples if t <= at]
        return {s for s, h in (before[-1] if before else {}).items() if h == pod}

    def taken_over(self, shards: set[int], *, from_pod: str, after: float) -> float | None:
        """Seconds from `after` until every one of `shards` was held by another pod."""
        for t, holders in self.samples:
            if t >= after and all(holders.get(s) not in (None, from_pod) for s in shards):
                return t - after
        return None

    def holds_again(self, pod: str, *, after: float) -> float | None:
        """The first sample time after `after` at which `pod` holds some shard."""
        for t, holders in self.samples:
            if t >= after and pod in holders.values():
                return t
        return None
