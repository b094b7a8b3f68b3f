"""The same object_id runs once per window: a resourceVersion-checked write decides."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from reportjobs_model.window import entry_key, shard_name
from tests.e2e.conftest import DeployRelease
from tests.e2e.support.kube import Cluster
from tests.e2e.support.polling import wait_until


def test_fifty_concurrent_posts_over_two_gateways_make_one_job(
    deploy_release: DeployRelease, cluster: Cluster
) -> None:
    release = deploy_release(gateway={"replicas": 2})
    gateway = release.gateway
    with ThreadPoolExecutor(max_workers=25) as pool:
        answers = list(pool.map(lambda _: gateway.submit("one-object"), range(50)))

    assert all(a.status in (200, 201) for a in answers), [a.status for a in answers]
    assert [a.status for a in answers].count(201) == 1
    assert len({a.body["job_id"] for a in answers}) == 1
    assert len({a.served_by for a in answers}) >= 2, "both gateway replicas must have answered"
    job_id = answers[0].body["job_id"]
    # The one ReportJob becomes exactly one batch Job.
    wait_until(
        lambda: cluster.worker_pods(release.namespace, job_id), timeout=120, what="the worker pod"
    )
    assert [rj["metadata"]["name"] for rj in cluster.reportjobs(release.namespace)] == [job_id]
    assert [job.metadata.name for job in cluster.jobs(release.namespace)] == [job_id]


def test_resubmission_after_the_window_is_a_new_job(
    deploy_release: DeployRelease, cluster: Cluster
) -> None:
    window = 8
    release = deploy_release(dedup={"windowSeconds": window})
    gateway = release.gateway
    first = gateway.submit("windowed-object")
    assert first.status == 201
    # Resubmit until the window has passed: 200 (the same job) until then, 201 after.
    seen: list[int] = []

    def resubmitted() -> object:
        answer = gateway.submit("windowed-object")
        seen.append(answer.status)
        if answer.status == 200:
            assert answer.body["job_id"] == first.body["job_id"]
        return answer.status == 201 and answer

    second = wait_until(resubmitted, timeout=60, interval=0.5, what="a new job after the window")
    assert 200 in seen, "a submission inside the window must have been deduplicated"
    assert second.body["job_id"] != first.body["job_id"]
    assert second.body["created_at"] > first.body["created_at"]

    # What the protocol stored for the object goes once the window is over (the operator's
    # sweep, every resyncSeconds); the shard itself stays.
    shard, key = shard_name("windowed-object"), entry_key("windowed-object")

    def claims() -> dict[str, str]:
        data = cluster.core.read_namespaced_config_map(shard, release.namespace).data
        return dict(data or {})

    assert key in claims()
    wait_until(lambda: key not in claims(), timeout=90, what="the closed claim to be pruned")
