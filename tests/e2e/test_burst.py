"""A burst of jobs through the gateway (100 under `make test`, 1,000 under `make
test-reliability`): every one finishes, once, with no container restart, and the operator's
liveness is never starved (issue #5)."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import DeployRelease
from tests.e2e.support.kube import TERMINAL, Cluster
from tests.e2e.support.polling import wait_until
from tests.e2e.support.testbed import audit_mark, job_creates, local_testbed_problem

CONCURRENCY = 16


def _restarts(cluster: Cluster, namespace: str) -> dict[str, int]:
    counts = {}
    for component in ("gateway", "operator"):
        for pod in cluster.pods(namespace, component):
            statuses = pod.status.container_statuses or []
            counts[pod.metadata.name] = sum(s.restart_count for s in statuses)
    return counts


@pytest.mark.parametrize(
    "burst",
    [pytest.param(100, id="100"), pytest.param(1000, id="1000", marks=pytest.mark.reliability)],
)
def test_a_burst_of_jobs_all_finish_once_without_restarts(
    burst: int, deploy_release: DeployRelease, cluster: Cluster, figures: dict[str, object]
) -> None:
    # 1,000 pods queue for two nodes' kubelets (110 pods each): a Job may wait minutes for its
    # pod to start, which the default start-up allowance (120 s past the timeout, counted from
    # the Job's start) would end as TimedOut. This test is about the control plane.
    release = deploy_release(
        job={"sleepMinSeconds": 0, "sleepMaxSeconds": 1, "startupAllowanceSeconds": 3600}
    )
    namespace, gateway = release.namespace, release.gateway
    mark = audit_mark()
    started = time.monotonic()

    def submit(i: int) -> int:
        for _ in range(5):  # retry what is transient (the proxy, a 503); same object id
            answer = gateway.submit(f"burst-{i}")
            if answer.status in (200, 201):
                return answer.status
        return answer.status

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        statuses = Counter(pool.map(submit, range(burst)))
    submitted = time.monotonic() - started
    assert statuses == {201: burst}, statuses

    def finished() -> int | None:
        phases = Counter(
            (rj.get("status") or {}).get("phase") for rj in cluster.reportjobs(namespace)
        )
        done = sum(phases[p] for p in TERMINAL)
        return done if done == burst else None

    wait_until(finished, timeout=40 * 60, interval=5, what=f"{burst} jobs to finish")
    elapsed = time.monotonic() - started
    phases = Counter((rj.get("status") or {}).get("phase") for rj in cluster.reportjobs(namespace))
    restarts = _restarts(cluster, namespace)
    operator = cluster.ready_pods(namespace, "operator")[0].metadata.name
    metrics = cluster.metrics(namespace, operator, 8080)
    print(
        f"{burst} jobs: submitted in {submitted:.1f} s ({burst / submitted:.0f}/s), all finished"
        f" after {elapsed:.0f} s; phases {dict(phases)}; restarts {restarts};"
        f" operator RSS {metrics['process_resident_memory_bytes'] / 2**20:.0f} MiB,"
        f" loop lag {metrics.get('reportjobs_operator_loop_lag_seconds')} s"
    )
    creates = job_creates(namespace, mark)
    attempts = job_creates(namespace, mark, answered=False)
    figures.update(
        jobs=burst,
        succeeded=phases["Succeeded"],
        restarts=sum(restarts.values()),
        job_create_attempts=None if attempts is None else len(attempts),
        submitted_per_second=round(burst / submitted),
    )
    assert phases == {"Succeeded": burst}, phases
    assert all(count == 0 for count in restarts.values()), restarts
    if local_testbed_problem(cluster) is not None:
        return  # no audit log to count in (kind)
    assert creates is not None, "the test bed's audit log is missing"
    assert attempts is not None, "the test bed's audit log is missing"
    # Every job's Job was asked for (the log is not blind: a create answered 500 may have
    # committed, so attempts count), and none was created twice.
    assert len(attempts) == burst, len(attempts)
    assert all(count == 1 for count in creates.values()), {
        k: v for k, v in creates.items() if v > 1
    }
