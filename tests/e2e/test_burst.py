"""A burst of 1,000 jobs through the gateway: every one finishes, once, with no container
restart, and the operator's liveness is never starved (issue #5)."""

from __future__ import annotations

import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from tests.e2e.conftest import DeployRelease
from tests.e2e.support.kube import TERMINAL, Cluster
from tests.e2e.support.polling import wait_until
from tests.e2e.support.testbed import audit_mark, job_creates

BURST = int(os.environ.get("REPORTJOBS_BURST", "1000"))
CONCURRENCY = 16


def _restarts(cluster: Cluster, namespace: str) -> dict[str, int]:
    counts = {}
    for component in ("gateway", "operator"):
        for pod in cluster.pods(namespace, component):
            statuses = pod.status.container_statuses or []
            counts[pod.metadata.name] = sum(s.restart_count for s in statuses)
    return counts


def test_a_burst_of_jobs_all_finish_once_without_restarts(
    deploy_release: DeployRelease, cluster: Cluster
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
        statuses = Counter(pool.map(submit, range(BURST)))
    submitted = time.monotonic() - started
    assert statuses == {201: BURST}, statuses

    def finished() -> int | None:
        phases = Counter(
            (rj.get("status") or {}).get("phase") for rj in cluster.reportjobs(namespace)
        )
        done = sum(phases[p] for p in TERMINAL)
        return done if done == BURST else None

    wait_until(finished, timeout=40 * 60, interval=5, what=f"{BURST} jobs to finish")
    elapsed = time.monotonic() - started
    phases = Counter((rj.get("status") or {}).get("phase") for rj in cluster.reportjobs(namespace))
    restarts = _restarts(cluster, namespace)
    operator = cluster.ready_pods(namespace, "operator")[0].metadata.name
    metrics = cluster.metrics(namespace, operator, 8080)
    print(
        f"{BURST} jobs: submitted in {submitted:.1f} s ({BURST / submitted:.0f}/s), all finished"
        f" after {elapsed:.0f} s; phases {dict(phases)}; restarts {restarts};"
        f" operator RSS {metrics['process_resident_memory_bytes'] / 2**20:.0f} MiB,"
        f" loop lag {metrics.get('reportjobs_operator_loop_lag_seconds')} s"
    )
    assert phases == {"Succeeded": BURST}, phases
    assert all(count == 0 for count in restarts.values()), restarts
    creates = job_creates(namespace, mark)
    attempts = job_creates(namespace, mark, answered=False)
    if creates is not None and attempts is not None:
        assert len(attempts) == BURST  # every job's Job was asked for (a 500 may have committed)
        assert all(count == 1 for count in creates.values()), {
            k: v for k, v in creates.items() if v > 1
        }
