"""Finished Jobs go once their outcome is recorded; finished ReportJobs go after retention, and
never while their dedup window is open (a submission in the window would create it again)."""

from __future__ import annotations

import time
from datetime import datetime

from tests.e2e.conftest import DeployRelease
from tests.e2e.support.jobs import wait_terminal
from tests.e2e.support.kube import Cluster
from tests.e2e.support.polling import wait_until


def test_finished_jobs_and_reportjobs_are_garbage_collected(
    deploy_release: DeployRelease, cluster: Cluster
) -> None:
    window = 40
    release = deploy_release(
        retention={"seconds": 1}, operator={"resyncSeconds": 5}, dedup={"windowSeconds": window}
    )
    gateway, namespace = release.gateway, release.namespace
    job_id = gateway.submit("retained-object").body["job_id"]
    job = wait_terminal(gateway, job_id)
    assert job["status"] == "Succeeded"

    # The outcome is in the ReportJob, so its pods go; the finished Job stays with it.
    wait_until(
        lambda: not cluster.worker_pods(namespace, job_id),
        timeout=60,
        what="the worker pods to be deleted",
    )
    stored = cluster.reportjob(namespace, job_id)
    assert stored is not None
    assert stored["status"]["phase"] == "Succeeded"

    # After the retention time, and once its window is over, the ReportJob itself goes.
    wait_until(
        lambda: cluster.reportjob(namespace, job_id) is None,
        timeout=120,
        interval=0.5,
        what="the ReportJob to be deleted after retention and its window",
    )
    wait_until(
        lambda: not cluster.jobs(namespace),
        timeout=120,
        what="the garbage collector to delete the batch Job with its ReportJob",
    )
    gone_at = time.time()  # this machine's clock is the API server's (the local test bed)
    window_end = datetime.fromisoformat(job["created_at"]).timestamp() + window
    finished = datetime.fromisoformat(job["finished_at"]).timestamp()
    into, after = finished - window_end + window, gone_at - window_end
    print(f"\nfinished {into:.0f} s into the window; gone {after:.1f} s after its end")
    assert gone_at >= window_end, "deleted while its dedup window was still open"
    assert gateway.job(job_id).status == 404
