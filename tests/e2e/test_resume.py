"""Accepted jobs finish exactly once through operator, worker-pod and gateway crashes."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from tests.e2e.conftest import DeployRelease
from tests.e2e.support.gateway import Answer
from tests.e2e.support.jobs import wait_status, wait_terminal
from tests.e2e.support.kube import Cluster
from tests.e2e.support.polling import wait_until


def kill_all(cluster: Cluster, namespace: str, component: str) -> list[str]:
    names = [pod.metadata.name for pod in cluster.pods(namespace, component)]
    for name in names:
        cluster.force_delete_pod(namespace, name)
    return names


def test_operator_killed_while_jobs_are_created_and_running(
    deploy_release: DeployRelease, cluster: Cluster
) -> None:
    release = deploy_release(job={"sleepMinSeconds": 8, "sleepMaxSeconds": 12})
    gateway, namespace = release.gateway, release.namespace
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda i: gateway.submit(f"crash-object-{i}"), range(12)))
    assert all(a.status == 201 for a in answers)
    job_ids = [a.body["job_id"] for a in answers]

    # Kill the operator while it is creating Jobs, then again while worker pods run (as the
    # cluster sees them: the restarted operator may not have written Running yet).
    killed = kill_all(cluster, namespace, "operator")
    wait_until(
        lambda: any(p.status.phase == "Running" for p in cluster.worker_pods(namespace)),
        timeout=180,
        interval=0.5,
        what="a worker pod to run",
    )
    killed += kill_all(cluster, namespace, "operator")
    assert len(killed) >= 2

    for job_id in job_ids:
        job = wait_terminal(gateway, job_id, timeout=300)
        assert job["status"] == "Succeeded", job
        assert job["attempts"] == 1, job  # one pod: the work ran once
        stored = cluster.reportjob(namespace, job_id)
        assert stored is not None
        assert len(stored["status"]["pods"]) == 1, stored["status"]
        assert str(job["sleep_seconds"]) in job["message"]


def test_worker_pod_killed_mid_run_reruns_with_the_same_sleep(
    deploy_release: DeployRelease, cluster: Cluster
) -> None:
    release = deploy_release(job={"sleepMinSeconds": 20, "sleepMaxSeconds": 24})
    gateway, namespace = release.gateway, release.namespace
    answer = gateway.submit("victim-object")
    job_id = answer.body["job_id"]
    # Kill the pod soon after it starts running (as the cluster sees it), well before it ends.
    first = wait_until(
        lambda: next(
            (p for p in cluster.worker_pods(namespace, job_id) if p.status.phase == "Running"),
            None,
        ),
        timeout=120,
        interval=0.5,
        what="the worker pod to run",
    )
    sleep_before = gateway.job(job_id).body["sleep_seconds"]
    assert len(cluster.worker_pods(namespace, job_id)) == 1
    cluster.force_delete_pod(namespace, first.metadata.name)
    wait_until(
        lambda: (
            {p.metadata.name for p in cluster.worker_pods(namespace, job_id)}
            - {first.metadata.name}
        ),
        timeout=120,
        what="a replacement worker pod",
    )
    wait_status(gateway, job_id, "Running")  # the operator reports the rerun

    job = wait_terminal(gateway, job_id, timeout=240)
    assert job["status"] == "Succeeded", job
    assert job["attempts"] == 2, job
    assert job["sleep_seconds"] == sleep_before
    assert f"slept {sleep_before}" in job["message"], job["message"]


def test_gateway_killed_during_submissions_loses_no_accepted_job(
    deploy_release: DeployRelease, cluster: Cluster
) -> None:
    release = deploy_release(
        gateway={"replicas": 2}, job={"sleepMinSeconds": 1, "sleepMaxSeconds": 2}
    )
    gateway, namespace = release.gateway, release.namespace
    accepted: list[Answer] = []
    refused: list[int] = []
    stop = threading.Event()

    def submit_loop(worker: int) -> None:
        n = 0
        while not stop.is_set():
            try:
                answer = gateway.submit(f"storm-{worker}-{n}")
            except Exception:  # noqa: BLE001 - a dropped connection is a refused submission
                refused.append(-1)
            else:
                (accepted if answer.status in (200, 201) else refused).append(
                    answer if answer.status in (200, 201) else answer.status
                )
            n += 1
            stop.wait(0.3)  # pacing: a bounded load, not a wait for a condition

    threads = [threading.Thread(target=submit_loop, args=(w,)) for w in range(2)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(accepted) >= 6, timeout=60, what="submissions to flow")
        kill_all(cluster, namespace, "gateway")
        release.wait_ready()
        count = len(accepted)
        wait_until(lambda: len(accepted) >= count + 6, timeout=90, what="submissions to resume")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)

    job_ids = {a.body["job_id"] for a in accepted}
    assert len(job_ids) == len(accepted), "distinct object_ids must give distinct jobs"
    for job_id in sorted(job_ids):
        assert wait_terminal(gateway, job_id, timeout=300)["status"] == "Succeeded"
    print(f"accepted={len(accepted)} distinct={len(job_ids)} refused={len(refused)}")
