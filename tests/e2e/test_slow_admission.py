"""Exact dedup while every write of the gateway is held 5 s by a validating admission webhook:
the API server stamps a write, then admission holds it, then it commits. The protocol must not
care how long that takes (docs/design.md, "Why it is exact")."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from tests.e2e.conftest import DeployRelease
from tests.e2e.support.gateway import Answer, Gateway
from tests.e2e.support.jobs import wait_terminal
from tests.e2e.support.kube import Cluster
from tests.e2e.support.polling import wait_until
from tests.e2e.support.slow_admission import slow_admission

DELAY = 5.0
WINDOW = 20


def _timed_submit(gateway: Gateway, object_id: str) -> tuple[Answer, float]:
    started = time.monotonic()
    answer = gateway.submit(object_id)
    return answer, time.monotonic() - started


def _one_job_and_one_batch_job(
    gateway: Gateway, cluster: Cluster, namespace: str, job_id: str
) -> None:
    """One ReportJob, run to the end by one batch Job (the operator deletes Jobs once their
    outcome is recorded, so Jobs are counted by the uids their events name). The ReportJob is
    created after the 201, its create held by the webhook too: it is counted once it ran."""
    assert wait_terminal(gateway, job_id, timeout=180)["status"] == "Succeeded"
    assert [rj["metadata"]["name"] for rj in cluster.reportjobs(namespace)] == [job_id]
    assert cluster.job_uids(namespace) == {job_id: 1}


def test_submissions_around_a_window_multiple_while_writes_are_slow_make_one_job(
    deploy_release: DeployRelease, cluster: Cluster
) -> None:
    """The issue's reproduction: POST 1.5 s before a multiple of the window (where the bucket
    protocol cut its buckets) and again 2.6 s after it, while each write is held 5 s."""
    release = deploy_release(gateway={"replicas": 2}, dedup={"windowSeconds": WINDOW})
    namespace, gateway = release.namespace, release.gateway
    with slow_admission(cluster, namespace, delay=DELAY) as webhook:
        wait_until(
            lambda: WINDOW - 1.6 <= time.time() % WINDOW <= WINDOW - 1.4,
            timeout=3 * WINDOW,
            interval=0.05,
            what="1.5 s before a multiple of the window",
        )
        with ThreadPoolExecutor(max_workers=2) as pool:
            first = pool.submit(_timed_submit, gateway, "boundary-object")
            wait_until(
                lambda: 2.6 <= time.time() % WINDOW <= 2.8,
                timeout=WINDOW,
                interval=0.05,
                what="2.6 s after the multiple",
            )
            second = pool.submit(_timed_submit, gateway, "boundary-object")
            (a, a_took), (b, b_took) = first.result(), second.result()

    print(
        f"\nslow admission: first {a.status} in {a_took:.1f} s, second {b.status} in {b_took:.1f} s"
    )
    print(f"webhook saw: {dict(webhook.seen)}")
    assert sorted([a.status, b.status]) == [200, 201], (a.body, b.body)
    assert a.body["job_id"] == b.body["job_id"]
    _one_job_and_one_batch_job(gateway, cluster, namespace, a.body["job_id"])
    assert webhook.seen["CREATE reportjobs"] >= 1
    assert min(a_took, b_took) >= DELAY, "the webhook held every submission's writes"


def test_twenty_concurrent_submissions_while_writes_are_slow_make_one_job(
    deploy_release: DeployRelease, cluster: Cluster
) -> None:
    release = deploy_release(gateway={"replicas": 2})
    namespace, gateway = release.namespace, release.gateway
    with (
        slow_admission(cluster, namespace, delay=DELAY) as webhook,
        ThreadPoolExecutor(max_workers=20) as pool,
    ):
        results = list(pool.map(lambda _: _timed_submit(gateway, "crowded-object"), range(20)))
    answers = [answer for answer, _ in results]
    took = sorted(seconds for _, seconds in results)
    statuses = [a.status for a in answers]
    print(f"\n20 concurrent under slow admission: statuses {sorted(statuses)}")
    print(f"latency min {took[0]:.1f} s, max {took[-1]:.1f} s; webhook saw {dict(webhook.seen)}")
    assert statuses.count(201) == 1, [(a.status, a.body) for a in answers]
    assert statuses.count(200) == 19
    assert len({a.body["job_id"] for a in answers}) == 1
    assert webhook.seen["UPDATE configmaps"] + webhook.seen["CREATE configmaps"] >= 2, (
        "several claims were in flight at once"
    )
    _one_job_and_one_batch_job(gateway, cluster, namespace, answers[0].body["job_id"])
