"""Sharded active/active operators under faults (docs/design.md, fencing).

Three replicas and short jobs (100 under `make test`, 300 under `make test-reliability`, on the
same fault timeline): one replica is force-killed mid-burst, another SIGSTOPped for 20 s and
resumed. Every job ends exactly once, no batch Job is created twice, the paused replica counts
as lost every shard taken from it, decides no write for a shard it held until it has written
that shard's Lease again (its writes are fenced: what it sends at the resume is what was already
past its Fence, at most one per worker, each of a kind the API server decides by name or
precondition), and the shards end spread over the three replicas again. Then a rolling update of
the operator under load: every shard moves from the old pods to the new ones, each handover
through a release by its holder (a version of its Lease without a holder), none by expiry."""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from reportjobs_model.shards import shard_of
from tests.e2e.conftest import DeployRelease
from tests.e2e.support.direct import DirectGateway, Outcome, gateway_url, submit_with_retries
from tests.e2e.support.jobwatch import JobWatch
from tests.e2e.support.kube import TERMINAL, Cluster
from tests.e2e.support.leasehistory import LeaseHistory
from tests.e2e.support.polling import wait_until
from tests.e2e.support.shards import HolderLog, spread
from tests.e2e.support.testbed import (
    audit_events,
    audit_mark,
    job_creates,
    kill_pod_processes,
    local_testbed_problem,
    pod_paused,
)

SHARDS = 16
LEASE_SECONDS = 15
OPERATOR_AGENT = "reportjobs-operator/"
WRITES = {"create", "update", "patch", "delete", "deletecollection"}
IN_FLIGHT = 8 + 1
"""Writes the paused replica can have had past their Fence check, but not sent, when SIGSTOP
landed: one per worker (the chart's operator.workers, 8; a worker sends one request at a time)
and the window sweep's. They leave on resume; the API server decides them (docs/design.md,
"Shards and fencing", point 5)."""
DECIDED_BY_THE_API_SERVER = {
    ("create", "jobs", ""),  # the ReportJob's name: a second create meets 409
    ("create", "events", ""),  # <job>.<reason>: a repeat meets 409
    ("update", "reportjobs", "status"),  # carries its resourceVersion
    ("patch", "jobs", ""),  # carries the Job's uid
    ("deletecollection", "pods", ""),  # the job's pods only
    ("delete", "reportjobs", ""),  # carries the uid
    ("create", "reportjobs", ""),  # the sweep's, from a claim: the claim's name
}
OBJECTS = {"reportjobs", "jobs", "pods", "configmaps"}
LOST = 'reportjobs_operator_rebalances_total{change="lost"}'
"""A replica's count of the shards it stopped because another took them or its Fence ran out."""


def _unix(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@dataclass
class Faults:
    killed: str = ""
    killed_at: float = 0.0  # time.monotonic()
    killed_shards: set[int] = field(default_factory=set)
    paused: str = ""
    paused_at: float = 0.0
    paused_shards: set[int] = field(default_factory=set)
    paused_lost: float = 0.0  # its count of lost shards just before the pause
    paused_restarts: int = 0
    resumed_at: float = 0.0
    resumed_wall: float = 0.0  # time.time() at SIGCONT (the audit log's clock: same machine)
    errors: list[str] = field(default_factory=list)


def _inject(cluster: Cluster, namespace: str, log: HolderLog, faults: Faults, start: float) -> None:
    """At 15 s SIGKILL the replica holding most shards; at 30 s SIGSTOP another for 20 s."""
    try:
        time.sleep(max(0.0, start + 15 - time.monotonic()))  # the fault plan's clock
        holders = Counter(h for h in log.samples[-1][1].values() if h)
        faults.killed = holders.most_common(1)[0][0]
        faults.killed_at = time.monotonic()
        faults.killed_shards = log.held_by(faults.killed, at=faults.killed_at)
        kill_pod_processes(namespace, faults.killed)
        cluster.force_delete_pod(namespace, faults.killed)
        time.sleep(max(0.0, start + 30 - time.monotonic()))
        holders = Counter(h for h in log.samples[-1][1].values() if h and h != faults.killed)
        faults.paused = holders.most_common(1)[0][0]
        faults.paused_lost, faults.paused_restarts = _lost(cluster, namespace, faults.paused)
        with pod_paused(namespace, faults.paused):
            faults.paused_at = time.monotonic()
            faults.paused_shards = log.held_by(faults.paused, at=faults.paused_at)
            time.sleep(20)  # the pause's length, not a wait for a condition
        faults.resumed_at, faults.resumed_wall = time.monotonic(), time.time()
    except Exception as error:  # noqa: BLE001 - reported and asserted on below
        faults.errors.append(repr(error))


def _lost(cluster: Cluster, namespace: str, pod: str) -> tuple[float, int]:
    """The pod's count of lost shards (its metric), and its container restarts (a restart
    would start the count again)."""
    restarts = sum(
        s.restart_count
        for s in cluster.core.read_namespaced_pod(pod, namespace).status.container_statuses or []
    )
    return cluster.metrics(namespace, pod, 8080)[LOST], restarts


def _stalls(cluster: Cluster, namespace: str, names: set[str]) -> tuple[list[float], list[float]]:
    """Per job: ReportJob created -> its Job created, and Job complete -> the operator's last
    status write (server stamps, whole seconds; the finished Job is kept)."""
    jobs = {job.metadata.name: job for job in cluster.jobs(namespace)}
    to_job, to_outcome = [], []
    for rj in cluster.reportjobs(namespace):
        name = rj["metadata"]["name"]
        job = jobs.get(name)
        if name not in names or job is None:
            continue
        created = _unix(rj["metadata"]["creationTimestamp"])
        to_job.append(job.metadata.creation_timestamp.timestamp() - created)
        writes = [
            _unix(entry["time"])
            for entry in rj["metadata"].get("managedFields") or []
            if entry.get("manager") == "reportjobs-operator" and entry.get("time")
        ]
        if job.status.completion_time is not None and writes:
            to_outcome.append(max(writes) - job.status.completion_time.timestamp())
    return to_job, to_outcome


def _submit_spread(gateway: DirectGateway, objects: list[str], seconds: float) -> list[Outcome]:
    start = time.monotonic()

    def one(i: int) -> Outcome:
        time.sleep(max(0.0, start + i * seconds / len(objects) - time.monotonic()))  # load
        return submit_with_retries(gateway, objects[i], give_up_after=240)

    with ThreadPoolExecutor(max_workers=32) as pool:
        return list(pool.map(one, range(len(objects))))


def _all_terminal(cluster: Cluster, namespace: str, ids: set[str]) -> bool:
    phases = {
        rj["metadata"]["name"]: (rj.get("status") or {}).get("phase")
        for rj in cluster.reportjobs(namespace)
    }
    return all(phases.get(job_id) in TERMINAL for job_id in ids)


def _reacquired(events: list[dict[str, Any]]) -> dict[int, float]:
    """Shard -> when the replica's first successful write of its Lease was received."""
    found: dict[int, float] = {}
    for e in events:
        ref = e.get("objectRef") or {}
        name = str(ref.get("name") or "")
        written = (e.get("responseStatus") or {}).get("code") == 200
        lease = ref.get("resource") == "leases" and "-shard-" in name
        if lease and written and e.get("verb") == "update":
            shard = int(name.rsplit("-", 1)[1])
            found.setdefault(shard, _unix(e["requestReceivedTimestamp"]))
    return found


def _job_written(event: dict[str, Any]) -> str | None:
    """The ReportJob a write concerns (None: not one job's)."""
    ref = event.get("objectRef") or {}
    resource = ref.get("resource")
    if resource not in ("reportjobs", "jobs", "pods", "events"):
        return None
    name = str(ref.get("name") or "")
    if resource == "pods" and not name:  # the collection delete of a job's pods, by label
        query = parse_qs(urlsplit(event.get("requestURI", "")).query)
        selector = (query.get("labelSelector") or [""])[0]
        name = selector.partition("=")[2]
    if resource == "events":
        name = name.rsplit(".", 1)[0]
    return name if name.startswith("rj-") else None


def _shard_written(event: dict[str, Any]) -> int | None:
    """The operator shard of the ReportJob a write concerns (None: not one job's)."""
    name = _job_written(event)
    return None if name is None else shard_of(name, shards=SHARDS)


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else max(values)


@pytest.mark.parametrize(
    "jobs",
    [pytest.param(100, id="100"), pytest.param(300, id="300", marks=pytest.mark.reliability)],
)
def test_three_replicas_a_kill_and_a_pause_every_job_ends_exactly_once(
    jobs: int, deploy_release: DeployRelease, cluster: Cluster, figures: dict[str, Any]
) -> None:
    problem = local_testbed_problem(cluster)
    if problem:
        pytest.skip(f"killing and pausing operator processes needs the local test bed: {problem}")
    release = deploy_release(
        gateway={"replicas": 2},
        operator={"replicas": 3, "shards": SHARDS, "leaseDurationSeconds": LEASE_SECONDS},
        job={"sleepMinSeconds": 1, "sleepMaxSeconds": 3},
        dedup={"windowSeconds": 3600},  # longer than the test: one ReportJob per object
    )
    namespace = release.namespace
    url = gateway_url(cluster, namespace)
    if url is None:
        pytest.skip("the gateway's ClusterIP is not reachable from this host")
    held = wait_until(
        lambda: spread(cluster, namespace, shards=SHARDS, replicas=3),
        timeout=180,
        what="3 replicas holding a fair share of the shards each",
    )
    assert sorted(held.values()) == [5, 5, 6], held
    gateway = DirectGateway(url, max_connections=64)
    objects = [f"shard-{random.randrange(1 << 30)}-{i}" for i in range(jobs)]
    audit_from = audit_mark(cluster)
    faults = Faults()

    with (
        JobWatch(cluster, namespace) as job_watch,
        HolderLog(cluster, namespace) as log,
        LeaseHistory(cluster, namespace) as history,
    ):
        wait_until(lambda: bool(log.samples), timeout=30, what="the first lease sample")
        start = time.monotonic()
        chaos = threading.Thread(target=_inject, args=(cluster, namespace, log, faults, start))
        chaos.start()
        try:
            outcomes = _submit_spread(gateway, objects, seconds=60)
        finally:
            chaos.join()
        accepted = {
            o.object_id: o.answer.body["job_id"] for o in outcomes if o.accepted and o.answer
        }
        wait_until(
            lambda: _all_terminal(cluster, namespace, set(accepted.values())),
            timeout=600,
            interval=3,
            what="every accepted job to finish",
        )
        settled = time.monotonic() - start
        rebalanced = wait_until(
            lambda: spread(cluster, namespace, shards=SHARDS, replicas=3),
            timeout=240,
            what="the shards spread over 3 replicas again",
        )
        wait_until(lambda: not cluster.worker_pods(namespace), timeout=180, what="pods deleted")
        lost_after, restarts_after = _lost(cluster, namespace, faults.paused)

    assert not faults.errors, faults.errors
    reportjobs = cluster.reportjobs(namespace)
    by_object = Counter(rj["spec"]["objectId"] for rj in reportjobs)
    phases = {rj["metadata"]["name"]: (rj.get("status") or {}).get("phase") for rj in reportjobs}
    lost_jobs = sorted(j for j in accepted.values() if phases.get(j) not in TERMINAL)
    duplicated = sorted(
        {obj for obj, n in by_object.items() if n > 1}
        | {o.object_id for o in outcomes if len(o.job_ids) > 1}
    )
    # The log must show a create of every Job the watch saw (else it is blind, and "no Job
    # created twice" would pass on nothing). Attempts: the create the killed replica had in
    # flight is logged answered 500 (its client gone) and may have committed: seen in 300-job
    # runs, a Job whose only create is that 500.
    attempts = job_creates(namespace, audit_from, answered=False, expect=job_watch.names)
    audit = job_creates(namespace, audit_from)
    assert attempts is not None, "the test bed's audit log is missing"
    assert audit is not None, "the test bed's audit log is missing"
    extra = dict(job_watch.extra_jobs)
    extra |= {name: n for name, n in audit.items() if n > 1}
    kill_takeover = log.taken_over(
        faults.killed_shards, from_pod=faults.killed, after=faults.killed_at
    )
    pause_takeover = log.taken_over(
        faults.paused_shards, from_pod=faults.paused, after=faults.paused_at
    )
    # Takes of the paused replica's shards, from the Lease history (a watch: every version):
    # a shard whose holder went from it straight to another pod, without a release (it was
    # stopped: it released nothing), after the pause began. The paused replica's own metric
    # must count each of them lost: a replica that missed one would go on acting on a shard
    # another holds.
    handovers = history.handovers()
    taken = {
        h.shard
        for h in handovers
        if h.from_pod == faults.paused and not h.released and h.at >= faults.paused_at
    }
    taken_from_killed = {h.shard for h in handovers if h.from_pod == faults.killed}
    lost = lost_after - faults.paused_lost
    # Fencing, from the audit log. The pause (20 s) outlasts every Fence it held (2/3 of the
    # lease), so after its resume the paused replica decides no write for any shard it held,
    # until it has written that shard's Lease again: its renewal if nobody took the shard, its
    # re-acquisition if another replica took it.
    agent = f"{OPERATOR_AGENT}{faults.paused}"
    after_resume = [
        e
        for e in audit_events(audit_from, agent.encode(), expect_at_least=1)
        if e.get("userAgent") == agent
        and _unix(e["requestReceivedTimestamp"]) >= faults.resumed_wall
    ]
    # Its requests since the resume are in the log (it lists its Leases every round): the
    # check below reads what it needs.
    assert after_resume, f"no request of {agent} in the audit log after its resume"
    reacquired = _reacquired(after_resume)
    # The shards it held when paused, from the samples, and any its Lease named it holder of
    # while it was stopped (a take it sent just before the SIGSTOP, committed after a sample).
    fenced = faults.paused_shards | history.held(
        faults.paused, start=faults.paused_at, end=faults.resumed_at
    )
    stale_writes = [
        e
        for e in after_resume
        if e.get("verb") in WRITES
        and (shard := _shard_written(e)) in fenced
        and _unix(e["requestReceivedTimestamp"]) < reacquired.get(shard, float("inf"))
    ]
    to_job, to_outcome = _stalls(cluster, namespace, set(accepted.values()))
    print(
        f"\nsharding: submitted={len(objects)} accepted={len(accepted)} lost={len(lost_jobs)} "
        f"duplicated={len(duplicated)} extra_batch_jobs={sum(n - 1 for n in extra.values())} "
        f"all terminal after {settled:.0f}s\n"
        f"  killed {faults.killed} holding {len(faults.killed_shards)} shards: taken over in "
        f"{kill_takeover}s; paused {faults.paused} (20 s) holding {len(faults.paused_shards)}: "
        f"all taken over in {pause_takeover}s ({len(taken)} taken from it by expiry, it counted "
        f"{lost:.0f} lost); its writes for those shards before writing their Leases again: "
        f"{len(stale_writes)} (lease {LEASE_SECONDS}s)\n"
        f"  CR->Job p50/p99/max {_pct(to_job, 50):.0f}/{_pct(to_job, 99):.0f}/{max(to_job):.0f}s; "
        f"Job done->outcome p50/p99/max {_pct(to_outcome, 50):.0f}/{_pct(to_outcome, 99):.0f}/"
        f"{max(to_outcome):.0f}s; final spread {sorted(rebalanced.values())}; "
        f"Job creates in the audit log: {sum(audit.values())}; Lease history: "
        f"{len(handovers)} handovers, re-lists {history.relists}"
    )
    figures.update(
        jobs=jobs,
        accepted=len(accepted),
        lost=len(lost_jobs),
        duplicated=len(duplicated),
        extra_batch_jobs=sum(n - 1 for n in extra.values()),
        job_creates_counted=sum(audit.values()),
        killed_shards=len(faults.killed_shards),
        taken_from_killed=len(taken_from_killed),
        paused_shards=len(faults.paused_shards),
        taken_from_paused_by_expiry=len(taken),
        counted_lost_by_paused=int(lost),
        writes_sent_at_resume=len(stale_writes),
        kill_takeover_seconds=None if kill_takeover is None else round(kill_takeover, 1),
        all_terminal_seconds=round(settled),
    )
    assert len(accepted) == len(objects)
    assert lost_jobs == [], lost_jobs[:10]
    assert duplicated == [], duplicated[:10]
    assert extra == {}, extra
    assert set(accepted.values()) <= job_watch.names
    assert faults.killed_shards
    assert faults.paused_shards
    assert kill_takeover is not None
    assert faults.killed_shards <= taken_from_killed, (faults.killed_shards, taken_from_killed)
    assert history.unseen_takes() == {}, history.unseen_takes()  # the watch saw every take
    assert restarts_after == faults.paused_restarts  # its counts are of one process
    assert lost >= len(taken), (lost, taken)
    # A write decided after the resume would have met an expired Fence: what passes is what was
    # past its check when the pause landed, at most one per worker, each for another job, and
    # each of a kind the API server decides by name or precondition.
    late = [
        (e["verb"], ref.get("resource"), ref.get("subresource") or "", _job_written(e))
        for e in stale_writes
        for ref in [e.get("objectRef") or {}]
    ]
    print(f"  writes sent at the resume (in flight when paused): {late}")
    assert len(late) <= IN_FLIGHT, late
    assert {kind[:3] for kind in late} <= DECIDED_BY_THE_API_SERVER, late
    assert len({kind[3] for kind in late}) == len(late), late  # one per worker, each its job
    # The second detector is not blind: every accepted job's Job was asked for.
    assert set(accepted.values()) <= set(attempts)


def _restart_operator(cluster: Cluster, namespace: str) -> str:
    """`kubectl rollout restart`: a new template annotation; the new ReplicaSet's hash."""
    deployment = next(
        d
        for d in cluster.apps.list_namespaced_deployment(namespace).items
        if d.metadata.name.endswith("-operator")
    )
    patch: dict[str, Any] = {
        "spec": {
            "template": {
                "metadata": {"annotations": {"reportjobs.io/restartedAt": str(time.time())}}
            }
        }
    }
    cluster.apps.patch_namespaced_deployment(deployment.metadata.name, namespace, patch)
    return str(deployment.metadata.name)


def _rolled_out(cluster: Cluster, namespace: str, name: str) -> bool:
    d = cluster.apps.read_namespaced_deployment(name, namespace)
    status, replicas = d.status, d.spec.replicas
    return bool(
        status.observed_generation == d.metadata.generation
        and status.updated_replicas == replicas
        and status.available_replicas == replicas
        and (status.replicas or 0) == replicas
    )


def test_a_rolling_update_under_load_hands_every_shard_over_by_release(
    deploy_release: DeployRelease, cluster: Cluster, figures: dict[str, Any]
) -> None:
    """The old pods release their Leases on SIGTERM (and over their fair share when a new pod
    joins), so the new pods take each shard on their next round: counted in the Lease history,
    every shard moves to a new pod and every move passes through a release. A handover by
    expiry (the holder gone without releasing) would show as a holder replaced by another with
    no version without a holder in between; it costs a whole lease duration of that shard's
    work, which the old check bounded by the clock."""
    release = deploy_release(
        operator={"replicas": 2, "leaseDurationSeconds": LEASE_SECONDS},
        job={"sleepMinSeconds": 1, "sleepMaxSeconds": 3},
        dedup={"windowSeconds": 3600},
    )
    namespace = release.namespace
    url = gateway_url(cluster, namespace)
    if url is None:
        pytest.skip("the gateway's ClusterIP is not reachable from this host")
    wait_until(
        lambda: spread(cluster, namespace, shards=SHARDS, replicas=2),
        timeout=180,
        what="2 replicas holding 8 shards each",
    )
    gateway = DirectGateway(url, max_connections=32)
    objects = [f"roll-{random.randrange(1 << 30)}-{i}" for i in range(120)]
    with LeaseHistory(cluster, namespace) as history:
        before = history.holders()
        old_pods = {p.metadata.name for p in cluster.pods(namespace, "operator")}
        restarted: list[str] = []
        timer = threading.Timer(10, lambda: restarted.append(_restart_operator(cluster, namespace)))
        timer.start()
        outcomes = _submit_spread(gateway, objects, seconds=60)
        timer.join()
        assert restarted, "the rollout was not started"
        wait_until(
            lambda: _rolled_out(cluster, namespace, restarted[0]),
            timeout=240,
            what="the rollout to finish",
        )
        accepted = {
            o.object_id: o.answer.body["job_id"] for o in outcomes if o.accepted and o.answer
        }
        wait_until(
            lambda: _all_terminal(cluster, namespace, set(accepted.values())),
            timeout=300,
            interval=2,
            what="every accepted job to finish",
        )
        wait_until(
            lambda: spread(cluster, namespace, shards=SHARDS, replicas=2),
            timeout=180,
            what="the 2 new replicas holding 8 shards each",
        )
        after = history.holders()
    handovers = history.handovers()
    by_expiry = [h for h in handovers if not h.released]
    moved = {h.shard for h in handovers}
    to_job, to_outcome = _stalls(cluster, namespace, set(accepted.values()))
    print(
        f"\nrolling update under load: {len(accepted)} jobs; Lease history: "
        f"{len(handovers)} handovers, {len(by_expiry)} by expiry, shards moved {len(moved)}/"
        f"{SHARDS} (re-lists {history.relists}); measured, not bounded: CR->Job max "
        f"{max(to_job):.0f}s, Job done->outcome max {max(to_outcome):.0f}s (lease "
        f"{LEASE_SECONDS}s)"
    )
    figures.update(
        jobs=len(objects),
        accepted=len(accepted),
        shards=SHARDS,
        shards_moved=len(moved),
        handovers_by_release=len(handovers) - len(by_expiry),
        handovers_by_expiry=len(by_expiry),
        cr_to_job_max_seconds=round(max(to_job)),
        job_done_to_outcome_max_seconds=round(max(to_outcome)),
    )
    assert len(accepted) == len(objects)
    # Before: the old pods held every shard; after: only new pods hold any.
    assert set(before) == set(range(SHARDS)), before
    assert set(before.values()) <= old_pods, before
    assert set(after) == set(range(SHARDS)), after
    assert not set(after.values()) & old_pods, after
    assert history.unseen_takes() == {}, history.unseen_takes()  # the watch saw every take
    assert moved == set(range(SHARDS)), moved  # so every shard was handed over, at least once
    assert by_expiry == [], by_expiry
