"""A ReportJob deleted by hand (`kubectl delete rj`) is final (issue #20, item 5): its work is
stopped, it ends Cancelled ("Cancelled: the ReportJob was deleted ..."), and its claim finalizer
keeps it, Terminating, until its dedup window is over and the operator's sweep has removed its
claim; then it goes. Inside the window a resubmission answers 200 with it, Cancelled; it is
never created again from its claim, and its work never runs again (at most one batch Job per
name, seen by a watch kept for the whole test, and at most one worker pod); after the window a
resubmission is a new job that runs to Succeeded.

Two arrangements: Running jobs deleted mid-run, and a job deleted before any Job was made for it
(the operator is scaled to 0 between its submission and its deletion, so no Job can be made
before the delete; none may be made after it)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from kubernetes import client

from reportjobs_model.window import claim_of, entry_key, shard_name
from tests.e2e.conftest import DeployRelease
from tests.e2e.support.gateway import Answer, Gateway
from tests.e2e.support.jobs import wait_status, wait_terminal
from tests.e2e.support.jobwatch import JobWatch
from tests.e2e.support.kube import GROUP, PLURAL, VERSION, Cluster
from tests.e2e.support.polling import wait_until
from tests.e2e.support.release import scale_operator

FINALIZER = "reportjobs.io/claim"
DELETED = "Cancelled: the ReportJob was deleted"
RESYNC = 2


def _delete_by_hand(cluster: Cluster, namespace: str, name: str) -> None:
    """What `kubectl delete rj <name>` sends (background propagation)."""
    cluster.custom.delete_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        body=client.V1DeleteOptions(propagation_policy="Background"),
    )


def _window_end(created_at: str, window: int) -> float:
    return datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp() + window


def _entry(cluster: Cluster, namespace: str, object_id: str) -> str | None:
    data = cluster.core.read_namespaced_config_map(shard_name(object_id), namespace).data
    return (data or {}).get(entry_key(object_id))


def _pods_created(cluster: Cluster, namespace: str, job: str) -> set[str]:
    """Every pod the Job controller ever created for Jobs named `job` (its events stay)."""
    events = cluster.core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.kind=Job,involvedObject.name={job}"
    ).items
    return {e.message for e in events if e.reason == "SuccessfulCreate"}


def _events_of(cluster: Cluster, namespace: str, name: str) -> list[str]:
    events = cluster.core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.kind=ReportJob,involvedObject.name={name}"
    ).items
    return [e.reason for e in events]


def _cancelled_by_deletion(gateway: Gateway, job_id: str) -> dict[str, Any]:
    job = wait_terminal(gateway, job_id, timeout=60)
    assert job["status"] == "Cancelled", job
    assert str(job["message"]).startswith(DELETED), job
    return job


def _held(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    """The deleted ReportJob as it is while its finalizer holds it."""
    rj = cluster.reportjob(namespace, name)
    assert rj is not None, f"{name} went while its window was open"
    assert rj["metadata"].get("deletionTimestamp"), rj["metadata"]
    assert FINALIZER in rj["metadata"].get("finalizers", []), rj["metadata"]
    return rj


class _Watcher:
    """Polls until each deleted ReportJob is gone, recording when it went and every worker pod
    seen for it meanwhile; checks on every sample that it is still held and Cancelled."""

    def __init__(self, cluster: Cluster, namespace: str, names: list[str]) -> None:
        self.cluster, self.namespace = cluster, namespace
        self.gone_at: dict[str, float] = {}
        self.pods: dict[str, set[str]] = {name: set() for name in names}
        self.wrong: list[str] = []

    def sample(self) -> bool:
        for name in self.pods:
            for pod in self.cluster.worker_pods(self.namespace, name):
                self.pods[name].add(pod.metadata.name)
            if name in self.gone_at:
                continue
            rj = self.cluster.reportjob(self.namespace, name)
            if rj is None:
                self.gone_at[name] = time.time()
                continue
            if not rj["metadata"].get("deletionTimestamp"):
                self.wrong.append(f"{name} is no longer being deleted: {rj['metadata']}")
            if (rj.get("status") or {}).get("phase") != "Cancelled":
                self.wrong.append(f"{name} is no longer Cancelled: {rj.get('status')}")
        return len(self.gone_at) == len(self.pods)


def test_reportjobs_deleted_while_running_stay_cancelled_and_never_run_again(
    deploy_release: DeployRelease, cluster: Cluster
) -> None:
    # The jobs must be Running, and still running, when they are deleted inside their window:
    # on a loaded test bed (the e2e suite runs several tests at once) a pod may take tens of
    # seconds to start, so the window and the sleeps leave room for that.
    window = 90
    release = deploy_release(
        dedup={"windowSeconds": window},
        operator={"replicas": 1, "resyncSeconds": RESYNC},
        job={"sleepMinSeconds": 40, "sleepMaxSeconds": 45},
    )
    gateway, namespace = release.gateway, release.namespace
    objects = [f"deleted-by-hand-{n}" for n in range(4)]
    with JobWatch(cluster, namespace) as jobs:
        first: dict[str, Answer] = {}
        for object_id in objects:
            answer = gateway.submit(object_id)
            assert answer.status == 201, answer.body
            first[object_id] = answer
        names = {object_id: first[object_id].body["job_id"] for object_id in objects}
        for name in names.values():
            wait_status(gateway, name, "Running", timeout=window)
            assert cluster.reportjob(namespace, name)["metadata"]["finalizers"] == [FINALIZER]

        ends = [_window_end(answer.body["created_at"], window) for answer in first.values()]
        assert time.time() < min(ends) - 10, "the jobs started too late to delete in the window"
        deleted_at = time.time()
        for name in names.values():
            _delete_by_hand(cluster, namespace, name)

        # Stopped and Cancelled, held by its finalizer; inside the window a resubmission
        # answers with it.
        for object_id, name in names.items():
            _cancelled_by_deletion(gateway, name)
            rj = _held(cluster, namespace, name)
            assert rj["status"]["phase"] == "Cancelled"
            again = gateway.submit(object_id)
            assert again.status == 200, (object_id, again.body)
            assert (again.body["job_id"], again.body["status"]) == (name, "Cancelled")
            assert str(again.body["message"]).startswith(DELETED)
        cancelled_after = time.time() - deleted_at

        # The Job is stopped, not deleted (its name stays taken), and its pod ends.
        for name in names.values():
            job = cluster.batch.read_namespaced_job(name, namespace)
            assert job.spec.active_deadline_seconds == 1, job.spec
        wait_until(
            lambda: not any(cluster.worker_pods(namespace, name) for name in names.values()),
            timeout=60,
            interval=0.5,
            what="the deleted jobs' pods to go",
        )

        # It goes once its window is over and its claim is swept; never before.
        watcher = _Watcher(cluster, namespace, list(names.values()))
        wait_until(
            watcher.sample,
            timeout=window + 90,
            interval=0.5,
            what="the deleted ReportJobs to go after their windows",
        )
        assert watcher.wrong == []
        for object_id, name in names.items():
            window_end = _window_end(first[object_id].body["created_at"], window)
            assert watcher.gone_at[name] >= window_end, (name, watcher.gone_at[name], window_end)
            # Its finalizer went after the sweep removed its claim: nothing can complete it.
            assert _entry(cluster, namespace, object_id) is None, object_id
            wait_until(  # the gateway's cache may lag the deletion by a moment
                lambda name=name: gateway.job(name).status == 404,
                timeout=15,
                interval=0.5,
                what=f"{name} to be unknown to the gateway",
            )

        # After the window: a new job, which runs.
        second: dict[str, str] = {}
        for object_id, name in names.items():
            answer = gateway.submit(object_id)
            assert answer.status == 201, (object_id, answer.body)
            assert answer.body["job_id"] != name
            second[object_id] = answer.body["job_id"]
            claim = claim_of(_entry(cluster, namespace, object_id) or "")
            assert claim is not None, object_id
            assert claim.job_name == second[object_id]
        for name in second.values():
            assert wait_terminal(gateway, name, timeout=180)["status"] == "Succeeded"
        for name in names.values():  # nothing of the deleted ones came back
            assert cluster.reportjob(namespace, name) is None
            assert not cluster.worker_pods(namespace, name)
        job_uids = dict(jobs.uids)
        extra = jobs.extra_jobs

    # Nothing ran twice: one Job per name, ever, and one pod for each deleted job.
    assert extra == {}, extra
    assert set(job_uids) == set(names.values()) | set(second.values()), set(job_uids)
    for name in names.values():
        assert len(job_uids[name]) == 1, (name, job_uids[name])
        created = _pods_created(cluster, namespace, name)
        assert len(created) == 1, (name, created)
        assert len(watcher.pods[name]) <= 1, (name, watcher.pods[name])
        reasons = _events_of(cluster, namespace, name)
        assert reasons.count("JobCreated") == 1, (name, reasons)
        assert "Cancelled" in reasons, (name, reasons)
    assert cluster.job_uids(namespace).keys() >= set(names.values())
    assert all(count == 1 for count in cluster.job_uids(namespace).values())
    late = {
        name: round(watcher.gone_at[name] - _window_end(first[o].body["created_at"], window), 1)
        for o, name in names.items()
    }
    print(
        f"\n{len(names)} Running ReportJobs deleted: Cancelled within {cancelled_after:.1f}s; "
        f"gone this many seconds after their windows: {late}"
    )


def test_a_reportjob_deleted_before_its_job_was_made_never_runs(
    deploy_release: DeployRelease, cluster: Cluster
) -> None:
    window = 30
    release = deploy_release(
        dedup={"windowSeconds": window},
        operator={"replicas": 1, "resyncSeconds": RESYNC},
        job={"sleepMinSeconds": 2, "sleepMaxSeconds": 3},
    )
    gateway, namespace = release.gateway, release.namespace
    object_id = "deleted-before-its-job"
    with JobWatch(cluster, namespace) as jobs:
        scale_operator(cluster, namespace, 0)
        answer = gateway.submit(object_id)
        assert answer.status == 201, answer.body
        name, window_end = answer.body["job_id"], _window_end(answer.body["created_at"], window)
        wait_until(
            lambda: cluster.reportjob(namespace, name),
            timeout=30,
            interval=0.5,
            what="the gateway to create the ReportJob",
        )
        _delete_by_hand(cluster, namespace, name)
        _held(cluster, namespace, name)

        scale_operator(cluster, namespace, 1)
        _cancelled_by_deletion(gateway, name)
        _held(cluster, namespace, name)
        assert time.time() < window_end - 2, "the operator came back too late: raise the window"
        again = gateway.submit(object_id)
        assert again.status == 200, again.body
        assert (again.body["job_id"], again.body["status"]) == (name, "Cancelled")

        watcher = _Watcher(cluster, namespace, [name])
        wait_until(
            watcher.sample,
            timeout=window + 90,
            interval=0.5,
            what="the deleted ReportJob to go after its window",
        )
        assert watcher.wrong == []
        assert watcher.gone_at[name] >= window_end, (watcher.gone_at[name], window_end)
        assert _entry(cluster, namespace, object_id) is None

        renewed = gateway.submit(object_id)
        assert renewed.status == 201, renewed.body
        assert renewed.body["job_id"] != name
        assert wait_terminal(gateway, renewed.body["job_id"], timeout=120)["status"] == "Succeeded"
        seen = jobs.names

    # No Job, no pod, no JobCreated for the deleted one, ever.
    assert seen == {renewed.body["job_id"]}, seen
    assert watcher.pods[name] == set()
    assert _pods_created(cluster, namespace, name) == set()
    reasons = _events_of(cluster, namespace, name)
    assert "JobCreated" not in reasons, reasons
    assert "Cancelled" in reasons, reasons
    print(
        f"\ndeleted before its Job: gone {watcher.gone_at[name] - window_end:.1f}s after its window"
    )
