"""A job that runs past its timeout is cancelled: TimedOut, and no pod left running."""

from __future__ import annotations

from tests.e2e.conftest import DeployRelease
from tests.e2e.support.jobs import wait_terminal
from tests.e2e.support.kube import Cluster
from tests.e2e.support.polling import wait_until


def assert_timed_out(
    cluster: Cluster, namespace: str, job: dict[str, object], timeout: int
) -> None:
    assert job["status"] == "TimedOut", job
    assert job["timeout_seconds"] == timeout
    assert str(timeout) in str(job["message"]), job["message"]
    wait_until(
        lambda: (
            not [
                p
                for p in cluster.worker_pods(namespace, str(job["job_id"]))
                if p.status.phase in ("Pending", "Running")
            ]
        ),
        timeout=60,
        what="no worker pod left running",
    )


def test_configured_timeout_cancels_a_long_job(
    deploy_release: DeployRelease, cluster: Cluster
) -> None:
    release = deploy_release(
        job={
            "sleepMinSeconds": 30,
            "sleepMaxSeconds": 30,
            "timeoutSeconds": 5,
            "maxTimeoutSeconds": 5,
        }
    )
    answer = release.gateway.submit("slow-object")
    assert answer.status == 201
    job = wait_terminal(release.gateway, answer.body["job_id"], timeout=120)
    assert_timed_out(cluster, release.namespace, job, 5)
    assert job["sleep_seconds"] == 30


def test_request_may_ask_for_a_shorter_timeout(
    deploy_release: DeployRelease, cluster: Cluster
) -> None:
    release = deploy_release(job={"sleepMinSeconds": 12, "sleepMaxSeconds": 12})
    answer = release.gateway.submit("impatient-object", timeout_seconds=4)
    assert answer.status == 201
    assert answer.body["timeout_seconds"] == 4
    job = wait_terminal(release.gateway, answer.body["job_id"], timeout=120)
    assert_timed_out(cluster, release.namespace, job, 4)
