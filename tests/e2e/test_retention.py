"""Finished Jobs go once their outcome is recorded; finished ReportJobs go after retention."""

from __future__ import annotations

from tests.e2e.conftest import DeployRelease
from tests.e2e.support.jobs import wait_terminal
from tests.e2e.support.kube import Cluster
from tests.e2e.support.polling import wait_until


def test_finished_jobs_and_reportjobs_are_garbage_collected(
    deploy_release: DeployRelease, cluster: Cluster
) -> None:
    release = deploy_release(retention={"seconds": 20}, operator={"resyncSeconds": 5})
    gateway, namespace = release.gateway, release.namespace
    job_id = gateway.submit("retained-object").body["job_id"]
    job = wait_terminal(gateway, job_id)
    assert job["status"] == "Succeeded"

    # The outcome is in the ReportJob, so the batch Job and its pods go.
    wait_until(lambda: not cluster.jobs(namespace), timeout=60, what="the batch Job to be deleted")
    wait_until(
        lambda: not cluster.worker_pods(namespace, job_id),
        timeout=60,
        what="the worker pods to be deleted",
    )
    stored = cluster.reportjob(namespace, job_id)
    assert stored is not None
    assert stored["status"]["phase"] == "Succeeded"

    # After the retention time the ReportJob itself goes.
    wait_until(
        lambda: cluster.reportjob(namespace, job_id) is None,
        timeout=120,
        what="the ReportJob to be deleted after retention",
    )
    assert gateway.job(job_id).status == 404
