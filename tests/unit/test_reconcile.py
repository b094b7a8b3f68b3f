"""The reconcile steps against a fake Kubernetes API and a fake index."""

from datetime import UTC, datetime
from typing import Any

import pytest

from reportjobs_model.crd import FINALIZER
from reportjobs_model.reportjob import is_deleting
from reportjobs_operator.ports import Refused
from reportjobs_operator.reconcile import Policy, Reconciler
from reportjobs_operator.status import DELETED_MESSAGE
from tests.unit.fakes import WORKER, FakeCache, FakeOperatorApi, reportjob, stamp

W = 300
B = 5_666_666
NOW = datetime.fromtimestamp(B * W + 100, UTC)
NAME = "rj-a-1"
SHARD = "reportjobs-windows-a"
"""Where NAME's claim is (window.place_of_job)."""

POLICY = Policy(
    sleep_min_seconds=15,
    sleep_max_seconds=40,
    retention_seconds=3600,
    worker=WORKER,
)


class Draws:
    def __init__(self, value: int) -> None:
        self.value = value
        self.calls: list[tuple[int, int]] = []

    def __call__(self, low: int, high: int) -> int:
        self.calls.append((low, high))
        return self.value


def _setup(
    created: float = B * W + 50, released: bool = True, **rj: Any
) -> tuple[FakeOperatorApi, FakeCache, Reconciler, Draws, dict[str, Any]]:
    api = FakeOperatorApi()
    draws = Draws(23)
    added = api.add_reportjob(reportjob(name=NAME, created=created, window=W, **rj))
    cache = FakeCache(api)
    reconciler = Reconciler(
        api=api,
        cache=cache,
        policy=POLICY,
        released=lambda _: released,
        draw=draws,
        clock=lambda: NOW,
    )
    return api, cache, reconciler, draws, added


async def _reconcile(reconciler: Reconciler, cache: FakeCache | None = None) -> None:
    """An event: the index catches up with the API (if given), then one reconcile."""
    if cache is not None:
        cache.sync()
    await reconciler.reconcile(name=NAME)


def _pod(job: dict[str, Any], name: str, phase: str, **state: Any) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"reportjobs.io/reportjob": NAME},
            "ownerReferences": [{"uid": job["metadata"]["uid"], "controller": True}],
        },
        "status": {"phase": phase, "containerStatuses": [{"state": state}] if state else []},
    }


def _complete(api: FakeOperatorApi) -> None:
    api.jobs[NAME]["status"] = {
        "conditions": [
            {"type": "Complete", "status": "True", "lastTransitionTime": stamp(B * W + 90)}
        ]
    }


async def test_the_sleep_is_drawn_once_and_persisted_with_the_job() -> None:
    api, _cache, reconciler, draws, _ = _setup()
    await _reconcile(reconciler)
    assert draws.calls == [(15, 40)]
    assert api.calls == [
        f"get_window_shard {SHARD}",
        f"create_job {NAME}",
        f"replace_status {NAME}",
    ]
    job = api.jobs[NAME]
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "23"
    assert job["metadata"]["annotations"]["reportjobs.io/sleep-seconds"] == "23"
    status = api.reportjobs[NAME]["status"]
    assert (status["sleepSeconds"], status["phase"], status["jobName"]) == (23, "Pending", NAME)


async def test_reads_come_from_the_index_and_a_repeat_costs_nothing() -> None:
    api, cache, reconciler, _, _ = _setup()
    await _reconcile(reconciler)
    before = list(api.calls)
    await _reconcile(reconciler)  # the index has our writes (write-through), before any event
    await _reconcile(reconciler, cache)  # and after the events
    assert api.calls == before


async def test_a_job_created_before_the_status_write_keeps_its_sleep() -> None:
    """Crash between the Job's create and the status write: the Job holds the drawn sleep."""
    api, cache, reconciler, draws, _ = _setup()
    await _reconcile(reconciler)
    api.reportjobs[NAME].pop("status")
    draws.value = 31
    await _reconcile(reconciler, cache)
    assert len(draws.calls) == 1
    assert api.reportjobs[NAME]["status"]["sleepSeconds"] == 23


async def test_the_sleep_is_never_redrawn() -> None:
    api, cache, reconciler, draws, _ = _setup()
    await _reconcile(reconciler)
    del api.jobs[NAME]  # e.g. deleted by hand
    await _reconcile(reconciler, cache)
    assert len(draws.calls) == 1
    assert api.jobs[NAME]["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "23"


async def test_gone_or_deleting_reportjobs_are_left_alone() -> None:
    """Deleting and not held by the claim finalizer (one of before it): it goes."""
    api, cache, reconciler, draws, _ = _setup(finalizers=())
    api.reportjobs[NAME]["metadata"]["deletionTimestamp"] = stamp(B * W + 99)
    await _reconcile(reconciler, cache)
    await reconciler.reconcile(name="rj-unknown-1")
    assert draws.calls == []
    assert api.jobs == {}
    assert api.calls == []


def _owner(rj: dict[str, Any]) -> dict[str, Any]:
    return {"uid": rj["metadata"]["uid"], "controller": True, "kind": "ReportJob", "name": NAME}


async def test_a_job_the_index_has_not_seen_yet_is_adopted() -> None:
    api, _cache, reconciler, _, rj = _setup(status={"sleepSeconds": 23, "phase": "Pending"})
    api.add_job({"metadata": {"name": NAME, "ownerReferences": [_owner(rj)]}})  # not in cache
    await _reconcile(reconciler)
    assert api.calls[:2] == [f"create_job {NAME}", f"get_job {NAME}"]
    assert f"delete_job {NAME}" not in api.calls
    assert api.reportjobs[NAME]["status"]["jobName"] == NAME


async def test_a_job_of_an_earlier_owner_is_deleted() -> None:
    api, cache, reconciler, _, rj = _setup(status={"sleepSeconds": 23, "phase": "Pending"})
    foreign = [{"uid": "old", "controller": True}]
    api.add_job({"metadata": {"name": NAME, "ownerReferences": foreign}})
    await _reconcile(reconciler, cache)
    assert api.calls.index(f"delete_job {NAME}") < api.calls.index(f"create_job {NAME}")
    assert api.jobs[NAME]["metadata"]["ownerReferences"][0]["uid"] == rj["metadata"]["uid"]


async def test_running_pods_make_it_running() -> None:
    api, cache, reconciler, _, _ = _setup()
    await _reconcile(reconciler)
    job = api.jobs[NAME]
    api.pods = [
        _pod(job, f"{NAME}-x", "Running"),
        _pod({"metadata": {"uid": "other"}}, "y", "Running"),
    ]
    await _reconcile(reconciler, cache)
    status = api.reportjobs[NAME]["status"]
    assert status["phase"] == "Running"
    assert status["pods"] == [f"{NAME}-x"]  # pods of another Job are not ours


async def test_terminal_status_is_written_then_the_pods_deleted_and_the_job_kept() -> None:
    """The finished Job stays as long as its ReportJob, so its name stays taken: a create sent
    late by a replica that lost the shard meets a conflict (docs/design.md, fencing)."""
    api, cache, reconciler, _, _ = _setup()
    await _reconcile(reconciler)
    api.pods = [_pod(api.jobs[NAME], "p", "Succeeded")]
    _complete(api)
    await _reconcile(reconciler, cache)
    assert api.reportjobs[NAME]["status"]["phase"] == "Succeeded"
    assert NAME in api.jobs
    assert api.pods == []
    last_write = max(i for i, c in enumerate(api.calls) if c.startswith("replace_status"))
    assert last_write < api.calls.index(f"delete_pods_of {NAME} exited")
    assert f"delete_job {NAME}" not in api.calls
    calls = len(api.calls)
    await _reconcile(reconciler)  # another event, before the pods' deletion events
    await _reconcile(reconciler, cache)  # the pods' deletion events
    assert len(api.calls) == calls
    cache.sync()
    assert reconciler.unsettled(cache.reportjobs.values()) == []


async def test_an_exited_pod_already_terminating_goes_at_once() -> None:
    """Deleted gracefully earlier, it has exited since: the kubelet would keep it until its
    status sync; a delete with grace 0 removes it now, once."""
    api, cache, reconciler, _, _ = _setup()
    await _reconcile(reconciler)
    pod = _pod(api.jobs[NAME], "p", "Succeeded")
    pod["metadata"]["deletionTimestamp"] = stamp(B * W + 95)
    api.pods = [pod]
    _complete(api)
    await _reconcile(reconciler, cache)
    assert [c for c in api.calls if c.startswith("delete_pods_of")] == [
        f"delete_pods_of {NAME} exited"
    ]
    assert api.pods == []
    cache.sync()
    assert reconciler.unsettled(cache.reportjobs.values()) == []


async def test_a_terminating_pod_still_running_is_waited_for_then_deleted_at_once() -> None:
    """SIGTERMed (by the Job controller of a stopped Job): no request until it has exited;
    then it goes at once, not after the kubelet's status sync period."""
    api, cache, reconciler, _, _ = _setup()
    await _reconcile(reconciler)
    pod = _pod(api.jobs[NAME], "p", "Running")
    pod["metadata"]["deletionTimestamp"] = stamp(B * W + 95)
    api.pods = [pod]
    api.jobs[NAME]["status"] = {"conditions": [{"type": "Failed", "status": "True"}]}
    await _reconcile(reconciler, cache)
    assert not any(call.startswith("delete_pods_of") for call in api.calls)
    assert reconciler.unsettled(cache.reportjobs.values()) == []
    pod["status"]["phase"] = "Failed"
    await _reconcile(reconciler, cache)
    assert api.calls[-1] == f"delete_pods_of {NAME} exited"
    assert api.pods == []


async def test_a_job_still_active_when_its_reportjob_ended_is_stopped_not_deleted() -> None:
    """E.g. TimedOut by the start deadline: the Job controller fails the stopped Job and
    deletes its pods; the Job stays."""
    api, cache, reconciler, _, _ = _setup(
        status={"sleepSeconds": 2, "phase": "TimedOut", "finishedAt": stamp(B * W + 99)}
    )
    job = api.add_job(
        {"metadata": {"name": NAME, "ownerReferences": [_owner(api.reportjobs[NAME])]}}
    )
    api.pods = [_pod(job, "p", "Running")]
    await _reconcile(reconciler, cache)
    assert api.calls[-1] == f"stop_job {NAME}"
    assert api.jobs[NAME]["spec"]["activeDeadlineSeconds"] == 1
    assert api.reportjobs[NAME]["status"]["phase"] == "TimedOut"
    cache.sync()
    assert reconciler.unsettled(cache.reportjobs.values()) == [NAME]
    api.jobs[NAME]["status"] = {"conditions": [{"type": "Failed", "status": "True"}]}
    await _reconcile(reconciler, cache)
    assert api.calls[-2:] == [f"stop_job {NAME}", f"delete_pods_of {NAME}"]  # SIGTERM
    api.pods[0]["status"]["phase"] = "Failed"
    await _reconcile(reconciler, cache)
    assert api.calls[-1] == f"delete_pods_of {NAME} exited"
    assert api.pods == []
    assert "delete_job" not in " ".join(api.calls)
    assert NAME in api.jobs


async def test_a_whole_life_within_the_request_budget() -> None:
    """Accepted (its claim checked) → Job → pod pending → running → exited → Complete → pods
    deleted: at most 7 requests (the e2e test_request_budget.py counts the same on a real API
    server)."""
    api, cache, reconciler, _, _ = _setup()
    await _reconcile(reconciler, cache)
    await _reconcile(reconciler, cache)  # the Job's ADDED event
    job = api.jobs[NAME]
    started = {"startedAt": stamp(B * W + 60)}
    for pod in (
        _pod(job, "p", "Pending"),
        _pod(job, "p", "Pending", waiting={"reason": "ContainerCreating"}),
        _pod(job, "p", "Running", running=started),
        _pod(job, "p", "Succeeded", terminated={"exitCode": 0, **started, "message": ""}),
    ):
        api.pods = [pod]
        await _reconcile(reconciler, cache)
    _complete(api)
    await _reconcile(reconciler, cache)
    await _reconcile(reconciler, cache)  # the pod's deletion
    assert api.reportjobs[NAME]["status"]["phase"] == "Succeeded"
    assert api.reportjobs[NAME]["status"]["pods"] == ["p"]
    assert api.calls == [
        f"get_window_shard {SHARD}",  # its claim names it: taken on
        f"create_job {NAME}",
        f"replace_status {NAME}",  # Pending, the sleep and the Job
        f"replace_status {NAME}",  # Running
        f"replace_status {NAME}",  # Succeeded
        f"delete_pods_of {NAME} exited",
    ]


async def test_expired_reportjobs_are_deleted() -> None:
    api, cache, reconciler, _, _ = _setup(
        created=B * W - 4000,
        status={"sleepSeconds": 2, "phase": "Succeeded", "finishedAt": stamp(B * W - 3601)},
    )
    await _reconcile(reconciler)  # released: deleted, and its finalizer removed in one pass
    assert api.reportjobs == {}
    assert cache.reportjob(NAME) is None
    assert api.calls[-2:] == [f"delete_reportjob {NAME}", f"set_finalizers {NAME} []"]


async def test_a_deleted_reportjob_is_stopped_and_held_until_its_claim_is_gone() -> None:
    """A delete is final: the work stops at once, the job ends Cancelled, and the ReportJob
    stays (its finalizer) until the sweep saw its claim gone, so that a create of its name from
    the claim meets it rather than running it again."""
    released = False
    api, cache, reconciler, _, added = _setup(released=False)
    reconciler = Reconciler(
        api=api,
        cache=cache,
        policy=POLICY,
        released=lambda _: released,
        draw=Draws(23),
        clock=lambda: NOW,
    )
    await _reconcile(reconciler)  # its Job is created and runs
    api.pods.append(_pod(api.jobs[NAME], "p1", "Running"))
    await api.delete_reportjob(name=NAME, uid=added["metadata"]["uid"])
    await _reconcile(reconciler, cache)
    assert api.jobs[NAME]["spec"]["activeDeadlineSeconds"] == 1  # stopped
    status = api.reportjobs[NAME]["status"]
    assert (status["phase"], status["message"]) == ("Cancelled", DELETED_MESSAGE)
    assert reconciler.unsettled(cache.reportjobs.values()) == [NAME]  # each resync looks again
    api.jobs[NAME]["status"] = {  # the Job controller ends it at its deadline
        "conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]
    }
    api.pods.clear()
    for _ in range(3):
        await _reconcile(reconciler, cache)
    assert NAME in api.reportjobs  # its claim may still be in its shard
    assert api.calls.count(f"create_job {NAME}") == 1
    released = True
    await _reconcile(reconciler, cache)
    assert NAME not in api.reportjobs


async def test_a_reportjob_deleted_before_its_job_never_gets_one() -> None:
    api, cache, reconciler, draws, added = _setup(released=False)
    await api.delete_reportjob(name=NAME, uid=added["metadata"]["uid"])
    await _reconcile(reconciler, cache)
    assert api.jobs == {}
    assert draws.calls == []
    assert api.reportjobs[NAME]["status"]["phase"] == "Cancelled"


async def test_a_finished_job_deleted_keeps_its_outcome() -> None:
    api, cache, reconciler, _, added = _setup(
        released=False, status={"sleepSeconds": 2, "phase": "Succeeded", "finishedAt": stamp(B * W)}
    )
    await api.delete_reportjob(name=NAME, uid=added["metadata"]["uid"])
    await _reconcile(reconciler, cache)
    assert api.reportjobs[NAME]["status"]["phase"] == "Succeeded"


async def test_a_reportjob_of_before_the_finalizer_gets_it() -> None:
    api, _cache, reconciler, _, _ = _setup(released=False, finalizers=())
    await _reconcile(reconciler)
    assert api.reportjobs[NAME]["metadata"]["finalizers"] == [FINALIZER]
    assert api.calls[0] == f"set_finalizers {NAME} {[FINALIZER]}"


async def test_a_reportjob_created_again_after_its_claim_went_is_deleted_not_run() -> None:
    """Deleted, its claim pruned, it went; a creator that read the claim before then creates
    it again: the operator, which takes a ReportJob on only if its claim names it on a read made
    after its create, deletes it instead of running it."""
    api = FakeOperatorApi()
    api.add_reportjob(reportjob(name=NAME, created=B * W + 50, window=W), claimed=False)
    cache = FakeCache(api)
    draws = Draws(23)
    reconciler = Reconciler(
        api=api, cache=cache, policy=POLICY, released=lambda _: True, draw=draws, clock=lambda: NOW
    )
    await _reconcile(reconciler, cache)
    assert api.jobs == {}
    assert draws.calls == []
    assert is_deleting(api.reportjobs[NAME])
    await _reconcile(reconciler, cache)  # deleting: Cancelled, and gone (its claim is)
    assert api.reportjobs == {}
    assert api.calls == [
        f"get_window_shard {SHARD}",
        f"delete_reportjob {NAME}",
        f"replace_status {NAME}",
        f"set_finalizers {NAME} []",
    ]


async def test_a_claim_naming_another_job_of_the_object_is_not_its_claim() -> None:
    api = FakeOperatorApi()
    api.add_reportjob(reportjob(name="rj-a-2", created=B * W + 52, window=W))  # a later claim
    api.add_reportjob(reportjob(name=NAME, created=B * W + 50, window=W), claimed=False)
    cache = FakeCache(api)
    reconciler = Reconciler(api=api, cache=cache, policy=POLICY, released=lambda _: False)
    await _reconcile(reconciler, cache)
    assert NAME not in api.jobs
    assert is_deleting(api.reportjobs[NAME])


async def test_a_lost_finalizer_write_is_read_again() -> None:
    """The finalizer patch tests the list it read: a change in between is a conflict, and the
    list is read again (another controller's finalizer stays)."""
    released = {NAME: False}
    api, cache, _, _, added = _setup()
    reconciler = Reconciler(
        api=api, cache=cache, policy=POLICY, released=released.__getitem__, clock=lambda: NOW
    )
    await api.delete_reportjob(name=NAME, uid=added["metadata"]["uid"])
    await _reconcile(reconciler, cache)  # Cancelled; held
    cache.sync()
    api.reportjobs[NAME]["metadata"]["finalizers"].append("example.com/other")
    api.calls.clear()
    released[NAME] = True
    await reconciler.reconcile(name=NAME)  # from the index, which lacks the other finalizer
    assert api.reportjobs[NAME]["metadata"]["finalizers"] == ["example.com/other"]
    assert api.calls == [
        f"set_finalizers {NAME} []",
        f"get_reportjob {NAME}",
        f"set_finalizers {NAME} ['example.com/other']",
    ]


async def test_kept_until_the_window_sweep_saw_its_claim_gone() -> None:
    """A claim without its ReportJob is completed (windows.py): deleting the job of a claim
    still in its shard would run it again."""
    api, _cache, reconciler, _, _ = _setup(
        created=B * W - 4000,
        released=False,
        status={"sleepSeconds": 2, "phase": "Succeeded", "finishedAt": stamp(B * W - 3601)},
    )
    await _reconcile(reconciler)
    assert NAME in api.reportjobs


async def test_kept_while_its_dedup_window_is_open_even_past_retention() -> None:
    """A submission inside the window re-creates a missing job: it must not go before."""
    api, _cache, reconciler, _, _ = _setup(
        created=B * W + 100 - W + 1,
        status={"sleepSeconds": 2, "phase": "Succeeded", "finishedAt": stamp(B * W - 3601)},
    )
    await _reconcile(reconciler)
    assert NAME in api.reportjobs


async def test_retained_until_the_retention_is_over() -> None:
    api, cache, reconciler, _, _ = _setup(
        status={"sleepSeconds": 2, "phase": "Succeeded", "finishedAt": stamp(B * W + 100 - 3600)}
    )
    await _reconcile(reconciler)
    assert NAME in api.reportjobs
    assert reconciler.unsettled(cache.reportjobs.values()) == []


async def test_a_stale_index_causes_a_conflict_and_a_fresh_read_never_a_wrong_write() -> None:
    api, _cache, reconciler, draws, _ = _setup()
    api.status_conflicts = 2
    await _reconcile(reconciler)
    assert api.reportjobs[NAME]["status"]["sleepSeconds"] == 23
    assert NAME in api.jobs
    assert len(draws.calls) == 1  # the Job (remembered) holds the sleep across the retries
    assert api.calls.count(f"get_reportjob {NAME}") == 2
    assert api.calls.count(f"create_job {NAME}") == 1


async def test_resync_queues_only_what_is_not_settled() -> None:
    api, cache, reconciler, _, _ = _setup()
    assert reconciler.unsettled(cache.reportjobs.values()) == [NAME]
    await _reconcile(reconciler)
    _complete(api)
    await _reconcile(reconciler, cache)
    cache.sync()
    assert reconciler.unsettled(cache.reportjobs.values()) == []


async def test_a_whole_life_tells_its_story_in_events_once() -> None:
    api, cache, reconciler, _, _ = _setup()
    await _reconcile(reconciler, cache)
    await _reconcile(reconciler, cache)  # the Job's ADDED event: nothing new to tell
    job = api.jobs[NAME]
    started = {"startedAt": stamp(B * W + 60)}
    api.pods = [_pod(job, "p", "Running", running=started)]
    await _reconcile(reconciler, cache)
    api.pods = [_pod(job, "p", "Succeeded", terminated={"exitCode": 0, **started, "message": ""})]
    _complete(api)
    await _reconcile(reconciler, cache)
    await _reconcile(reconciler, cache)
    events = list(api.events.values())
    assert [e["reason"] for e in events] == ["Accepted", "JobCreated", "Started", "Succeeded"]
    assert {e["type"] for e in events} == {"Normal"}
    assert all(e["involvedObject"]["name"] == NAME for e in events)
    assert all(e["involvedObject"]["kind"] == "ReportJob" for e in events)
    assert "sleeps 23 s" in events[1]["message"]


async def test_a_timeout_is_a_warning_event() -> None:
    api, cache, reconciler, _, _ = _setup()
    await _reconcile(reconciler, cache)
    api.jobs[NAME]["status"] = {
        "conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]
    }
    await _reconcile(reconciler, cache)
    timed_out = api.events[f"{NAME}.timedout"]
    assert (timed_out["reason"], timed_out["type"]) == ("TimedOut", "Warning")
    assert timed_out["message"].startswith("TimedOut")


async def test_a_job_is_stopped_once_while_its_job_controller_fails_it() -> None:
    api, cache, reconciler, _, added = _setup()
    await _reconcile(reconciler)  # its Job is created
    await api.delete_reportjob(name=NAME, uid=added["metadata"]["uid"])
    for _ in range(3):  # passes before the Job controller's Failed comes back
        await _reconcile(reconciler, cache)
    assert api.calls.count(f"stop_job {NAME}") == 1


async def test_the_claim_check_deletes_only_the_version_it_read() -> None:
    """The index lags: the ReportJob was accepted (a status write whose answer was lost) and
    its claim replaced since by the object's next claim. The check's delete carries the
    resourceVersion it read, so the accepted job is left alone."""
    api = FakeOperatorApi()
    api.add_reportjob(reportjob(name=NAME, created=B * W + 50, window=W), claimed=False)
    cache = FakeCache(api)
    cache.sync()  # the index: not accepted
    api.reportjobs[NAME]["status"] = {"phase": "Running"}
    api.reportjobs[NAME]["metadata"]["resourceVersion"] = "7"
    reconciler = Reconciler(api=api, cache=cache, policy=POLICY, released=lambda _: False)
    await reconciler.reconcile(name=NAME)
    assert not is_deleting(api.reportjobs[NAME])
    assert f"delete_reportjob {NAME}" in api.calls  # sent, and refused by its precondition


async def test_a_job_the_cluster_refuses_is_accepted_and_tried_again() -> None:
    """A quota or an admission policy refuses the Job: the ReportJob is accepted all the same
    (its claim may go, the object's next submission is not held up), says why it waits, and is
    tried again after a backoff."""
    api, cache, reconciler, _, _ = _setup()
    api.refusing = "403 exceeded quota: count/jobs.batch"
    with pytest.raises(Refused):
        await _reconcile(reconciler, cache)
    status = api.reportjobs[NAME]["status"]
    assert status["phase"] == "Pending"
    assert "exceeded quota" in status["message"]
    api.refusing = None
    await _reconcile(reconciler, cache)
    assert NAME in api.jobs
