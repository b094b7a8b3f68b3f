"""Chaos: a steady stream of submissions while operator replicas (each holding shards) and
gateway pods are SIGKILLed and etcd is frozen; nothing accepted is lost, duplicated or run by a
second Job."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.e2e.conftest import DeployRelease
from tests.e2e.support.direct import DirectGateway, Outcome, gateway_url, submit_with_retries
from tests.e2e.support.jobwatch import JobWatch
from tests.e2e.support.kube import TERMINAL, Cluster
from tests.e2e.support.polling import wait_until
from tests.e2e.support.testbed import (
    audit_mark,
    freeze_etcd,
    job_creates,
    kill_pod_processes,
    local_testbed_problem,
)

SUBMISSIONS = 220
DURATION = 120.0  # seconds over which submissions are spread and faults are injected
SHARD_LEASES = "reportjobs.io/lease-role=shard"
ETCD_FREEZE_AT, ETCD_FREEZE_SECONDS = 55.0, 5.0


@dataclass
class Faults:
    operator_kills: list[str] = field(default_factory=list)
    gateway_kills: list[str] = field(default_factory=list)
    etcd_frozen_seconds: float = 0.0
    processes_killed: int = 0  # SIGKILLed on this machine (each kill finds the pod's processes)
    skipped: list[str] = field(default_factory=list)  # faults that could not be injected


def schedule(rng: random.Random) -> list[tuple[float, str]]:
    """(time, fault) pairs: operator kills every 5-15 s, gateway kills every 10-20 s, one
    freeze."""
    events = [(ETCD_FREEZE_AT, "etcd")]
    for kind, low, high in (("operator", 5, 15), ("gateway", 10, 20)):
        t = rng.uniform(low, high)
        while t < DURATION:
            events.append((t, kind))
            t += rng.uniform(low, high)
    return sorted(events)


def kill(cluster: Cluster, namespace: str, pod: str, faults: Faults) -> None:
    """SIGKILL the pod's processes on this machine, then force-delete the pod so its Deployment
    replaces it (a container restarted in place would soon be in CrashLoopBackOff)."""
    faults.processes_killed += len(kill_pod_processes(namespace, pod))
    cluster.force_delete_pod(namespace, pod)


def inject(cluster: Cluster, namespace: str, kind: str, rng: random.Random, faults: Faults) -> None:
    if kind == "etcd":
        started = time.monotonic()
        freeze_etcd(ETCD_FREEZE_SECONDS)
        faults.etcd_frozen_seconds = time.monotonic() - started
    elif kind == "operator":
        leases = client.CoordinationV1Api(cluster.api).list_namespaced_lease(
            namespace, label_selector=SHARD_LEASES, _request_timeout=5
        )
        holders = {lease.spec.holder_identity for lease in leases.items}
        running = {p.metadata.name for p in cluster.pods(namespace, "operator")}
        if holders & running:
            victim = rng.choice(sorted(holders & running))
            kill(cluster, namespace, victim, faults)
            faults.operator_kills.append(victim)
        else:
            faults.skipped.append(f"operator: no running shard holder in {sorted(holders)}")
    else:
        ready = [p.metadata.name for p in cluster.ready_pods(namespace, "gateway")]
        if ready:
            victim = rng.choice(sorted(ready))
            kill(cluster, namespace, victim, faults)
            faults.gateway_kills.append(victim)
        else:
            faults.skipped.append("gateway: none ready")


def run_faults(
    cluster: Cluster, namespace: str, rng: random.Random, faults: Faults, start: float
) -> None:
    for at, kind in schedule(rng):
        time.sleep(max(0.0, start + at - time.monotonic()))  # the fault plan's clock
        try:
            inject(cluster, namespace, kind, rng, faults)
        except (ApiException, OSError, LookupError) as error:  # e.g. API unreachable
            faults.skipped.append(f"{kind}: {error!r}"[:160])


def test_chaos_loses_nothing_and_duplicates_nothing(
    deploy_release: DeployRelease, cluster: Cluster
) -> None:
    problem = local_testbed_problem(cluster)
    if problem:
        pytest.skip(f"chaos needs the local test bed: {problem}")
    release = deploy_release(
        gateway={"replicas": 2},
        operator={"replicas": 2, "leaseDurationSeconds": 10},
        job={"sleepMinSeconds": 1, "sleepMaxSeconds": 3},
        dedup={"windowSeconds": 3600},  # longer than the test: one ReportJob per object
    )
    namespace = release.namespace
    url = gateway_url(cluster, namespace)
    if url is None:
        pytest.skip("the gateway's ClusterIP is not reachable from this host")
    gateway = DirectGateway(url, max_connections=64)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    faults = Faults()
    audit_from = audit_mark()
    objects = [f"chaos-{i}" for i in range(SUBMISSIONS)]

    with JobWatch(cluster, namespace) as job_watch:
        start = time.monotonic()
        chaos = threading.Thread(target=run_faults, args=(cluster, namespace, rng, faults, start))
        chaos.start()

        def client_submits(i: int) -> Outcome:
            time.sleep(max(0.0, start + i * DURATION / SUBMISSIONS - time.monotonic()))  # load
            return submit_with_retries(gateway, objects[i], give_up_after=240)

        try:
            with ThreadPoolExecutor(max_workers=32) as pool:
                outcomes = list(pool.map(client_submits, range(SUBMISSIONS)))
        finally:
            chaos.join()
        submitting = time.monotonic() - start

        accepted = {
            o.object_id: o.answer.body["job_id"] for o in outcomes if o.answer and o.accepted
        }

        def all_terminal() -> bool:
            phases = {
                rj["metadata"]["name"]: (rj.get("status") or {}).get("phase")
                for rj in cluster.reportjobs(namespace)
            }
            return all(phases.get(job_id) in TERMINAL for job_id in accepted.values())

        try:
            wait_until(all_terminal, timeout=600, interval=3, what="every accepted job to finish")
        except AssertionError as error:
            print(f"not all accepted jobs finished: {error}")
        settled = time.monotonic() - start
        try:  # let the watch see the last Jobs finish and their pods go
            wait_until(
                lambda: not cluster.worker_pods(namespace), timeout=120, what="worker pods deleted"
            )
        except AssertionError as error:
            print(f"worker pods left behind: {error}")

    reportjobs = cluster.reportjobs(namespace)
    by_object: dict[str, list[str]] = {}
    for rj in reportjobs:
        by_object.setdefault(rj["spec"]["objectId"], []).append(rj["metadata"]["name"])
    phases = {rj["metadata"]["name"]: (rj.get("status") or {}).get("phase") for rj in reportjobs}
    lost = sorted(job_id for job_id in accepted.values() if phases.get(job_id) not in TERMINAL)
    duplicated = sorted(
        {obj for obj, names in by_object.items() if len(names) > 1}
        | {o.object_id for o in outcomes if len(o.job_ids) > 1}
    )
    audit = job_creates(namespace, audit_from)
    extra_by_name = dict(job_watch.extra_jobs)
    for name, creates in (audit or {}).items():
        if creates > 1:
            extra_by_name[name] = max(creates, extra_by_name.get(name, 0))
    extra_jobs = sum(count - 1 for count in extra_by_name.values())
    refused = [o for o in outcomes if not o.accepted]
    statuses = Counter(o.answer.status for o in outcomes if o.answer)
    failures = Counter(f.split(" ")[0] for o in outcomes for f in o.failures)

    print(
        f"\nchaos (seed {seed}): submitted={SUBMISSIONS} accepted={len(accepted)} "
        f"terminal={len(accepted) - len(lost)} lost={len(lost)} duplicated={len(duplicated)} "
        f"extra_batch_jobs={extra_jobs}\n"
        f"  answers: {dict(statuses)}; client retries: {sum(failures.values())} "
        f"{dict(failures)}; refused after retries: {len(refused)}\n"
        f"  faults: operator replicas SIGKILLed {len(faults.operator_kills)}x, gateway pod "
        f"SIGKILLed {len(faults.gateway_kills)}x ({faults.processes_killed} processes in all), "
        f"etcd SIGSTOPped "
        f"{faults.etcd_frozen_seconds:.1f}s; not injected: {faults.skipped}\n"
        f"  phases: {dict(Counter(phases.values()))}; Jobs seen by the watch: "
        f"{len(job_watch.names)} (re-lists {job_watch.relists}); Job creates in the audit log: "
        f"{sum(audit.values()) if audit is not None else 'n/a'}\n"
        f"  submissions done after {submitting:.0f}s, all terminal after {settled:.0f}s"
    )
    assert not refused, [(o.object_id, o.answer, o.failures[-3:]) for o in refused[:5]]
    # About 12 operator and 8 gateway kills are planned.
    assert len(faults.operator_kills) >= 3, faults
    assert len(faults.gateway_kills) >= 3, faults
    assert faults.processes_killed >= len(faults.operator_kills) + len(faults.gateway_kills)
    assert faults.etcd_frozen_seconds >= ETCD_FREEZE_SECONDS
    assert lost == [], lost[:10]
    assert duplicated == [], {obj: by_object.get(obj) for obj in duplicated[:10]}
    assert extra_jobs == 0, extra_by_name
    # Every accepted job had its Job, seen by the watch (and by the audit log, where there is
    # one: a check that the second detector is not blind).
    assert set(accepted.values()) <= job_watch.names
    attempts = job_creates(namespace, audit_from, answered=False)
    if attempts is not None:  # a create answered 500 during the etcd freeze may have committed
        assert set(accepted.values()) <= set(attempts), "the audit log misses Job creates"


def test_the_extra_job_detectors_see_a_job_created_twice(namespace: str, cluster: Cluster) -> None:
    """The chaos test's "extra batch Jobs" can fail: a Job deleted and created again under the
    same name is counted by the watch (and by the audit log on the local test bed)."""
    audit_from = audit_mark()
    job = client.V1Job(
        metadata=client.V1ObjectMeta(name="probe"),
        spec=client.V1JobSpec(
            parallelism=0,  # no pod: only the Job object matters here
            template=client.V1PodTemplateSpec(
                spec=client.V1PodSpec(
                    restart_policy="Never",
                    containers=[client.V1Container(name="c", image="none.invalid/none")],
                )
            ),
        ),
    )
    with JobWatch(cluster, namespace) as job_watch:
        for _ in range(2):
            cluster.batch.create_namespaced_job(namespace, job)
            cluster.batch.delete_namespaced_job("probe", namespace, propagation_policy="Background")
            wait_until(lambda: not cluster.jobs(namespace), timeout=60, what="the Job to go")
        wait_until(lambda: job_watch.extra_jobs, timeout=30, what="the watch to see both")
    creates = job_creates(namespace, audit_from)
    print(f"\nextra-Job detectors: watch {job_watch.extra_jobs}, audit log {creates}")
    assert job_watch.extra_jobs == {"probe": 2}
    if local_testbed_problem(cluster) is None:
        assert creates == {"probe": 2}
