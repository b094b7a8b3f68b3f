"""DELETE /jobs/{id} on the test bed: a Running and a just-submitted (Pending) job end
`Cancelled`, their pods are gone within 10 s, a second DELETE answers 200 with the cancelled job,
a resubmission inside the window returns it, and a job that finished otherwise answers 409."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import DeployRelease
from tests.e2e.support.direct import DirectGateway, gateway_url
from tests.e2e.support.jobs import wait_status, wait_terminal
from tests.e2e.support.kube import Cluster
from tests.e2e.support.polling import wait_until

POD_GONE_SECONDS = 10


def test_cancel_a_running_and_a_pending_job(
    quiet_cluster: None, deploy_release: DeployRelease, cluster: Cluster
) -> None:
    release = deploy_release(job={"sleepMinSeconds": 30, "sleepMaxSeconds": 40})
    gateway, namespace = release.gateway, release.namespace
    url = gateway_url(cluster, namespace)
    if url is None:
        pytest.skip("the gateway's ClusterIP is not reachable from this host")
    direct = DirectGateway(url)

    running = gateway.submit("cancel-running").body["job_id"]
    wait_status(gateway, running, "Running", timeout=120)
    started = time.monotonic()
    answer = direct.request("DELETE", f"/jobs/{running}")
    assert answer.status in (200, 202), answer.body
    assert wait_terminal(gateway, running, timeout=30)["status"] == "Cancelled"
    wait_until(
        lambda: not cluster.worker_pods(namespace, running),
        timeout=60,
        interval=0.5,
        what="the cancelled job's pod to go",
    )
    pod_gone = time.monotonic() - started
    again = direct.request("DELETE", f"/jobs/{running}")
    assert again.status == 200, again.body
    assert again.body["status"] == "Cancelled"
    assert "Cancelled" in str(again.body["message"])
    resubmitted = gateway.submit("cancel-running")
    assert resubmitted.status == 200
    assert resubmitted.body["job_id"] == running  # still the job of its window
    assert resubmitted.body["status"] == "Cancelled"

    pending = direct.submit("cancel-pending").body["job_id"]
    answer = direct.request("DELETE", f"/jobs/{pending}")  # right after the 201
    assert answer.status in (200, 202), answer.body
    assert wait_terminal(gateway, pending, timeout=30)["status"] == "Cancelled"
    wait_until(
        lambda: not cluster.worker_pods(namespace, pending),
        timeout=60,
        interval=0.5,
        what="the cancelled pending job's pod (if any) to go",
    )
    jobs = {job.metadata.name: job for job in cluster.jobs(namespace)}
    for name in (running, pending):  # a Job, if made, is kept stopped (its name stays taken)
        if name in jobs:
            assert jobs[name].spec.active_deadline_seconds == 1
            assert not jobs[name].status.active
    told = cluster.core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.kind=ReportJob,involvedObject.name={running}"
    ).items
    assert {(e.reason, e.type) for e in told} >= {("Started", "Normal"), ("Cancelled", "Normal")}
    print(f"\ncancel: the running job's pod was gone {pod_gone:.1f}s after the DELETE")
    assert pod_gone <= POD_GONE_SECONDS, pod_gone
    assert direct.request("DELETE", "/jobs/rj-0123456789abcdef01234567-1").status == 404


def test_cancel_of_a_finished_job_is_409(deploy_release: DeployRelease) -> None:
    release = deploy_release()
    gateway = release.gateway
    job_id = gateway.submit("cancel-too-late").body["job_id"]
    assert wait_terminal(gateway, job_id)["status"] == "Succeeded"
    answer = gateway.request("DELETE", f"/jobs/{job_id}")
    assert answer.status == 409, answer.body
    assert answer.body["job"]["status"] == "Succeeded"
