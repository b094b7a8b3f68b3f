"""A POST goes to a terminal status through a real Job and pod, and the CR records it."""

from __future__ import annotations

from tests.e2e.conftest import DeployRelease
from tests.e2e.support.kube import TERMINAL, Cluster
from tests.e2e.support.polling import wait_until


def test_post_runs_a_real_job_to_success(deploy_release: DeployRelease, cluster: Cluster) -> None:
    release = deploy_release()
    answer = release.gateway.submit("slice-object")
    assert answer.status == 201, answer.body
    job_id = answer.body["job_id"]
    assert answer.body["object_id"] == "slice-object"

    # A real batch/v1 Job and a real worker pod appear.
    wait_until(
        lambda: cluster.worker_pods(release.namespace, job_id),
        timeout=120,
        what="a worker pod for the job",
    )
    done = wait_until(
        lambda: (body := release.gateway.job(job_id).body).get("status") in TERMINAL and body,
        timeout=180,
        what=f"{job_id} to reach a terminal status",
    )
    assert done["status"] == "Succeeded", done
    assert 2 <= done["sleep_seconds"] <= 4
    assert done["created_at"]
    assert done["started_at"]
    assert done["finished_at"]
    assert done["created_at"] <= done["started_at"] <= done["finished_at"]

    stored = cluster.reportjob(release.namespace, job_id)
    assert stored is not None
    assert stored["status"]["phase"] == "Succeeded"
    assert stored["status"]["sleepSeconds"] == done["sleep_seconds"]
    # Kubernetes API conventions: a summary condition and observedGeneration.
    assert stored["status"]["observedGeneration"] == stored["metadata"]["generation"]
    conditions = {c["type"]: c for c in stored["status"]["conditions"]}
    assert conditions["Complete"]["status"] == "True"
    assert conditions["Complete"]["reason"] == "Succeeded"
    assert conditions["JobCreated"]["status"] == "True"
    for condition in conditions.values():
        assert condition["lastTransitionTime"].endswith("Z")
