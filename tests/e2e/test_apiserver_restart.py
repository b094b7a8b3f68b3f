"""kube-apiserver restarted while jobs are pending, running and being submitted: every status
catches up within 75 s of the API server being back, nothing is lost or run twice.

Under `make test-reliability` only, alone: restarting the API server disturbs every other test
on the test bed."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import DeployRelease
from tests.e2e.support.direct import DirectGateway, Outcome, gateway_url, submit_with_retries
from tests.e2e.support.jobwatch import JobWatch
from tests.e2e.support.kube import TERMINAL, Cluster
from tests.e2e.support.polling import wait_until
from tests.e2e.support.testbed import (
    Restart,
    apiserver_back,
    audit_mark,
    job_creates,
    local_testbed_problem,
    restart_apiserver,
)

pytestmark = [pytest.mark.reliability, pytest.mark.serial]

CATCH_UP_SECONDS = 75
"""A latency that is the property. What bounds it: the operator's and the Job controller's
watches break with the API server and are re-established (list, then watch) once it is back;
the operator's resync (operator.resyncSeconds, 10 s in the test values) re-reads every
ReportJob it owns even if an event was missed; the shards' Leases (10 s here) may expire while
the API server is down, and are taken again within a duration and a round; the jobs still to
run take 8-14 s each."""
BEFORE, DURING = 16, 8  # jobs submitted before the restart, and while it happens


def phases(cluster: Cluster, namespace: str) -> dict[str, str | None]:
    return {
        rj["metadata"]["name"]: (rj.get("status") or {}).get("phase")
        for rj in cluster.reportjobs(namespace)
    }


def test_apiserver_restart_mid_run_loses_nothing(
    deploy_release: DeployRelease, cluster: Cluster, figures: dict[str, object]
) -> None:
    problem = local_testbed_problem(cluster)
    if problem:
        pytest.skip(f"restarting kube-apiserver needs the local test bed: {problem}")
    release = deploy_release(
        gateway={"replicas": 2},
        operator={"replicas": 2, "leaseDurationSeconds": 10},
        job={"sleepMinSeconds": 8, "sleepMaxSeconds": 14},
        dedup={"windowSeconds": 3600},
    )
    namespace = release.namespace
    url = gateway_url(cluster, namespace)
    if url is None:
        pytest.skip("the gateway's ClusterIP is not reachable from this host")
    gateway = DirectGateway(url)
    audit_from = audit_mark(cluster)

    with JobWatch(cluster, namespace) as job_watch:
        with ThreadPoolExecutor(max_workers=8) as pool:
            before = list(
                pool.map(lambda i: submit_with_retries(gateway, f"before-{i}"), range(BEFORE))
            )
        assert all(o.answer and o.answer.status == 201 for o in before), before
        # Mid-run: some worker pods run, some jobs wait (as the cluster sees it).
        wait_until(
            lambda: "Running" in phases(cluster, namespace).values(),
            timeout=180,
            interval=0.5,
            what="a job to be Running",
        )
        seen_before = Counter(phases(cluster, namespace).values())

        during: list[Outcome] = []

        def one_during(i: int) -> Outcome:
            time.sleep(i * 1.5)  # spread over the restart: load shape, not a wait
            return submit_with_retries(gateway, f"during-{i}", give_up_after=240)

        def submit_during() -> None:
            with ThreadPoolExecutor(max_workers=DURING) as pool:
                during.extend(pool.map(one_during, range(DURING)))

        submitter = threading.Thread(target=submit_during)
        restart: Restart | None = None
        try:
            submitter.start()
            restart = restart_apiserver(cluster)
        finally:
            apiserver_back(cluster)  # whatever happened, leave a ready API server behind
            submitter.join()
        back_at = time.monotonic()

        accepted = {o.object_id: o.answer.body["job_id"] for o in before + during if o.accepted}

        def caught_up() -> bool:
            current = phases(cluster, namespace)
            return all(current.get(job_id) in TERMINAL for job_id in accepted.values())

        try:
            wait_until(caught_up, timeout=CATCH_UP_SECONDS, interval=1, what="statuses")
            catch_up: float | None = time.monotonic() - back_at
        except AssertionError:
            catch_up = None
            # Not within the bound: still wait, to tell slow from lost.
            wait_until(caught_up, timeout=300, interval=2, what="statuses, late")
        final = phases(cluster, namespace)

    lost = sorted(j for j in accepted.values() if final.get(j) not in TERMINAL)
    objects = Counter(rj["spec"]["objectId"] for rj in cluster.reportjobs(namespace))
    duplicated = sorted(obj for obj, n in objects.items() if n > 1)
    # Every Job the watch saw was asked for in the log (a create cut short by the restart may
    # still have committed, so every attempt counts): the log is not blind to what it checks.
    attempts = job_creates(namespace, audit_from, answered=False, expect=job_watch.names)
    audit = job_creates(namespace, audit_from)
    assert attempts is not None, "the test bed's audit log is missing"
    assert audit is not None, "the test bed's audit log is missing"
    extra = {
        name: max(len(job_watch.uids.get(name, ())), audit.get(name, 0))
        for name in set(job_watch.uids) | set(audit)
        if max(len(job_watch.uids.get(name, ())), audit.get(name, 0)) > 1
    }
    retries = Counter(f.split(" ")[0] for o in during for f in o.failures)
    assert restart is not None
    print(
        f"\nkube-apiserver restart: pid {restart.old_pid} -> {restart.new_pid}, "
        f"down {restart.down_seconds:.1f}s (kill to /readyz 200)\n"
        f"  phases at the restart: {dict(seen_before)}; submitted {BEFORE} before and "
        f"{DURING} during (client retries {sum(retries.values())} {dict(retries)}, answers "
        f"{dict(Counter(o.answer.status for o in during if o.answer))})\n"
        f"  accepted {len(accepted)}, all terminal "
        + (
            f"{catch_up:.1f}s after the API server was back"
            if catch_up is not None
            else f"NOT within {CATCH_UP_SECONDS}s"
        )
        + f"; lost {len(lost)}, duplicated {len(duplicated)}, extra batch Jobs "
        f"{sum(n - 1 for n in extra.values())}; final phases {dict(Counter(final.values()))}\n"
        f"  Job watch re-lists {job_watch.relists}, errors {len(job_watch.errors)}"
    )
    figures.update(
        jobs=BEFORE + DURING,
        accepted=len(accepted),
        lost=len(lost),
        duplicated=len(duplicated),
        extra_batch_jobs=sum(n - 1 for n in extra.values()),
        job_create_attempts=sum(attempts.values()),
        client_retries=sum(retries.values()),
        down_seconds=round(restart.down_seconds, 1),
        catch_up_seconds=None if catch_up is None else round(catch_up, 1),
    )
    assert len(accepted) == BEFORE + DURING, [o for o in during if not o.accepted]
    assert lost == []
    assert duplicated == []
    assert extra == {}
    assert set(accepted.values()) <= job_watch.names  # each accepted job had its Job
    assert catch_up is not None, (
        f"statuses took longer than {CATCH_UP_SECONDS}s to catch up (the watches' re-list, the "
        "operator's resync and the Leases' expiry bound it)"
    )
