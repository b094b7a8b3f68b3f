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
from tests.e2e.support.polling import ConditionTimeout, wait_until
from tests.e2e.support.testbed import (
    audit_mark,
    freeze_etcd,
    job_creates,
    kill_pod_processes,
    local_testbed_problem,
)

SHARD_LEASES = "reportjobs.io/lease-role=shard"


@dataclass(frozen=True)
class Plan:
    """How much load and which faults: submissions spread over ``duration`` seconds, operator
    and gateway kills at random intervals within their (low, high) bounds, etcd frozen at the
    given times. The bounds guarantee the minimum counts the test asserts: kill k comes at
    most k * high seconds in, so each kind happens at least duration // high - 1 times."""

    submissions: int
    duration: float
    operator_every: tuple[float, float]
    gateway_every: tuple[float, float]
    etcd_freezes: tuple[float, ...]
    etcd_freeze_seconds: float

    def at_least(self, every: tuple[float, float]) -> int:
        return int(self.duration // every[1]) - 1


# `make test`: about 60 s, every fault kind at least 3 times. `make test-reliability`: the
# full run, twice as long with nearly four times the load.
SMALL = Plan(80, 60.0, (5, 12), (8, 15), (12.0, 30.0, 48.0), 3.0)
FULL = Plan(220, 120.0, (5, 15), (10, 20), (30.0, 55.0, 90.0), 5.0)


@dataclass
class Faults:
    operator_kills: list[str] = field(default_factory=list)
    gateway_kills: list[str] = field(default_factory=list)
    etcd_frozen: list[float] = field(default_factory=list)  # seconds, one entry per freeze
    processes_killed: int = 0  # SIGKILLed on this machine (each kill finds the pod's processes)
    skipped: list[str] = field(default_factory=list)  # faults that could not be injected


def schedule(plan: Plan, rng: random.Random) -> list[tuple[float, str]]:
    """(time, fault) pairs: operator and gateway kills at random intervals, etcd freezes."""
    events = [(at, "etcd") for at in plan.etcd_freezes]
    for kind, (low, high) in (("operator", plan.operator_every), ("gateway", plan.gateway_every)):
        t = rng.uniform(low, high)
        while t < plan.duration:
            events.append((t, kind))
            t += rng.uniform(low, high)
    return sorted(events)


def shard_holders_running(cluster: Cluster, namespace: str) -> list[str]:
    """The running operator pods that hold a shard's Lease, sorted."""
    leases = client.CoordinationV1Api(cluster.api).list_namespaced_lease(
        namespace, label_selector=SHARD_LEASES, _request_timeout=5
    )
    holders = {lease.spec.holder_identity for lease in leases.items}
    running = {p.metadata.name for p in cluster.pods(namespace, "operator")}
    return sorted(holders & running)


def kill(cluster: Cluster, namespace: str, pod: str, faults: Faults) -> None:
    """SIGKILL the pod's processes on this machine, then force-delete the pod so its Deployment
    replaces it (a container restarted in place would soon be in CrashLoopBackOff)."""
    faults.processes_killed += len(kill_pod_processes(namespace, pod))
    cluster.force_delete_pod(namespace, pod)


def inject(
    cluster: Cluster, namespace: str, kind: str, plan: Plan, rng: random.Random, faults: Faults
) -> None:
    if kind == "etcd":
        started = time.monotonic()
        freeze_etcd(plan.etcd_freeze_seconds)
        faults.etcd_frozen.append(time.monotonic() - started)
    elif kind == "operator":
        # A shard holder to kill: right after a kill none may be running (the killed pod's
        # successor waits for its leases to expire), so look for one for a few seconds.
        try:
            victims = wait_until(
                lambda: shard_holders_running(cluster, namespace),
                timeout=15,
                interval=1,
                what="a running operator replica holding shards",
            )
        except ConditionTimeout:
            victims = []
        if victims:
            victim = rng.choice(victims)
            kill(cluster, namespace, victim, faults)
            faults.operator_kills.append(victim)
        else:
            faults.skipped.append("operator: no running shard holder for 15 s")
    else:
        ready = [p.metadata.name for p in cluster.ready_pods(namespace, "gateway")]
        if ready:
            victim = rng.choice(sorted(ready))
            kill(cluster, namespace, victim, faults)
            faults.gateway_kills.append(victim)
        else:
            faults.skipped.append("gateway: none ready")


def run_faults(
    cluster: Cluster, namespace: str, plan: Plan, rng: random.Random, faults: Faults, start: float
) -> None:
    for at, kind in schedule(plan, rng):
        time.sleep(max(0.0, start + at - time.monotonic()))  # the fault plan's clock
        try:
            inject(cluster, namespace, kind, plan, rng, faults)
        except (ApiException, OSError, LookupError) as error:  # e.g. API unreachable
            faults.skipped.append(f"{kind}: {error!r}"[:160])


@pytest.mark.serial  # etcd is frozen: every other test on the test bed would stall with it
@pytest.mark.parametrize(
    "plan",
    [
        pytest.param(SMALL, id="60s"),
        pytest.param(FULL, id="120s", marks=pytest.mark.reliability),
    ],
)
def test_chaos_loses_nothing_and_duplicates_nothing(
    plan: Plan, deploy_release: DeployRelease, cluster: Cluster, figures: dict[str, object]
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
    objects = [f"chaos-{i}" for i in range(plan.submissions)]

    with JobWatch(cluster, namespace) as job_watch:
        start = time.monotonic()
        chaos = threading.Thread(
            target=run_faults, args=(cluster, namespace, plan, rng, faults, start)
        )
        chaos.start()

        def client_submits(i: int) -> Outcome:
            time.sleep(
                max(0.0, start + i * plan.duration / plan.submissions - time.monotonic())
            )  # load
            return submit_with_retries(gateway, objects[i], give_up_after=240)

        try:
            with ThreadPoolExecutor(max_workers=32) as pool:
                outcomes = list(pool.map(client_submits, range(plan.submissions)))
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
    attempts = job_creates(namespace, audit_from, answered=False)
    assert audit is not None, "the test bed's audit log is missing"
    assert attempts is not None, "the test bed's audit log is missing"
    extra_by_name = dict(job_watch.extra_jobs)
    for name, creates in audit.items():
        if creates > 1:
            extra_by_name[name] = max(creates, extra_by_name.get(name, 0))
    extra_jobs = sum(count - 1 for count in extra_by_name.values())
    refused = [o for o in outcomes if not o.accepted]
    statuses = Counter(o.answer.status for o in outcomes if o.answer)
    failures = Counter(f.split(" ")[0] for o in outcomes for f in o.failures)

    print(
        f"\nchaos (seed {seed}): submitted={plan.submissions} accepted={len(accepted)} "
        f"terminal={len(accepted) - len(lost)} lost={len(lost)} duplicated={len(duplicated)} "
        f"extra_batch_jobs={extra_jobs}\n"
        f"  answers: {dict(statuses)}; client retries: {sum(failures.values())} "
        f"{dict(failures)}; refused after retries: {len(refused)}\n"
        f"  faults: operator replicas SIGKILLed {len(faults.operator_kills)}x, gateway pod "
        f"SIGKILLed {len(faults.gateway_kills)}x ({faults.processes_killed} processes in all), "
        f"etcd SIGSTOPped {len(faults.etcd_frozen)}x "
        f"{[round(f, 1) for f in faults.etcd_frozen]}s; not injected: {faults.skipped}\n"
        f"  phases: {dict(Counter(phases.values()))}; Jobs seen by the watch: "
        f"{len(job_watch.names)} (re-lists {job_watch.relists}); Job creates in the audit log: "
        f"{sum(audit.values())}\n"
        f"  submissions done after {submitting:.0f}s, all terminal after {settled:.0f}s"
    )
    figures.update(
        submitted=plan.submissions,
        accepted=len(accepted),
        lost=len(lost),
        duplicated=len(duplicated),
        extra_jobs=extra_jobs,
        operator_kills=len(faults.operator_kills),
        gateway_kills=len(faults.gateway_kills),
        etcd_freezes=len(faults.etcd_frozen),
        job_creates_in_audit_log=sum(audit.values()),
    )
    assert not refused, [(o.object_id, o.answer, o.failures[-3:]) for o in refused[:5]]
    # Every fault kind happened at least 3 times. The plan schedules more kills than that
    # (a kill finds no victim while a killed pod's successor starts, and is not injected).
    assert plan.at_least(plan.operator_every) >= 3
    assert plan.at_least(plan.gateway_every) >= 3
    assert len(faults.operator_kills) >= 3, faults
    assert len(faults.gateway_kills) >= 3, faults
    assert faults.processes_killed >= len(faults.operator_kills) + len(faults.gateway_kills)
    assert len(faults.etcd_frozen) == len(plan.etcd_freezes) >= 3, faults
    assert min(faults.etcd_frozen) >= plan.etcd_freeze_seconds, faults
    assert lost == [], lost[:10]
    assert duplicated == [], {obj: by_object.get(obj) for obj in duplicated[:10]}
    assert extra_jobs == 0, extra_by_name
    # Every accepted job had its Job, seen by the watch and by the audit log (a check that
    # neither detector is blind; a create answered 500 during a freeze may have committed, so
    # the log's side counts attempts).
    assert set(accepted.values()) <= job_watch.names
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
