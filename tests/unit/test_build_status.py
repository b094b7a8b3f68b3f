"""The status a ReportJob gets from its Job and worker pods."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from reportjobs_operator.status import build_status, worth_writing
from tests.unit.fakes import reportjob

NOW = datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)
NOW_TEXT = "2024-05-01T12:00:30Z"
EARLIER = "2024-05-01T11:00:00Z"


def _job(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "rj-a-1", "uid": "job-uid"},
        "status": {"conditions": list(conditions)},
    }


def _condition(kind: str, reason: str | None = None, message: str | None = None) -> dict[str, Any]:
    condition = {"type": kind, "status": "True", "lastTransitionTime": "2024-05-01T12:00:20+00:00"}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def _pod(name: str, phase: str, state: dict[str, Any] | None = None) -> dict[str, Any]:
    statuses = [{"name": "worker", "state": state}] if state else []
    return {
        "metadata": {"name": name, "labels": {"reportjobs.io/reportjob": "rj-a-1"}},
        "status": {"phase": phase, "containerStatuses": statuses},
    }


def _running(name: str, started: str = "2024-05-01T12:00:01+00:00") -> dict[str, Any]:
    return _pod(name, "Running", {"running": {"startedAt": started}})


def _succeeded(name: str, report: dict[str, Any] | None) -> dict[str, Any]:
    terminated = {
        "exitCode": 0,
        "startedAt": "2024-05-01T12:00:01+00:00",
        "finishedAt": "2024-05-01T12:00:19+00:00",
        "message": json.dumps(report) if report is not None else "",
    }
    return _pod(name, "Succeeded", {"terminated": terminated})


def _status(
    job: dict[str, Any] | None, pods: list[dict[str, Any]], previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    rj = reportjob(name="rj-a-1", timeout=45, status=previous or {"sleepSeconds": 18})
    sleep = (previous or {"sleepSeconds": 18}).get("sleepSeconds")
    return build_status(reportjob=rj, job=job, pods=pods, sleep_seconds=sleep, now=NOW)


def _conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def test_pending_before_the_job_exists() -> None:
    status = _status(None, [])
    assert status["phase"] == "Pending"
    assert status["sleepSeconds"] == 18
    assert (status["attempts"], status["pods"]) == (0, [])
    assert status["observedGeneration"] == 1
    assert "jobName" not in status
    assert "startedAt" not in status
    assert "finishedAt" not in status
    conditions = _conditions(status)
    assert conditions["JobCreated"]["status"] == "False"
    assert (conditions["Complete"]["status"], conditions["Complete"]["reason"]) == (
        "False",
        "Pending",
    )
    assert conditions["Complete"]["lastTransitionTime"] == NOW_TEXT


def test_pending_shows_why_the_pod_waits() -> None:
    waiting = {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}
    status = _status(_job(), [_pod("rj-a-1-x", "Pending", waiting)])
    assert status["phase"] == "Pending"
    assert "ImagePullBackOff" in status["message"]
    assert status["jobName"] == "rj-a-1"
    assert _conditions(status)["JobCreated"]["status"] == "True"


def test_running() -> None:
    status = _status(_job(), [_running("rj-a-1-x")])
    assert status["phase"] == "Running"
    assert status["startedAt"] == "2024-05-01T12:00:01Z"
    assert (status["attempts"], status["pods"]) == (1, ["rj-a-1-x"])
    assert _conditions(status)["Complete"]["reason"] == "Running"


def test_succeeded_reports_the_workers_sleep() -> None:
    pods = [_succeeded("rj-a-1-x", {"sleptSeconds": 18})]
    status = _status(_job(_condition("Complete")), pods)
    assert status["phase"] == "Succeeded"
    assert status["finishedAt"] == "2024-05-01T12:00:20Z"
    assert "18 seconds" in status["message"]
    complete = _conditions(status)["Complete"]
    assert (complete["status"], complete["reason"]) == ("True", "Succeeded")


def test_succeeded_without_a_report() -> None:
    status = _status(_job(_condition("Complete")), [_succeeded("rj-a-1-x", None)])
    assert status["phase"] == "Succeeded"
    assert "no report" in status["message"]


def test_the_worker_stopping_at_its_timeout_is_timed_out() -> None:
    report = {"timedOut": True, "sleepSeconds": 50, "timeoutSeconds": 45, "ranSeconds": 45.002}
    status = _status(_job(_condition("Complete")), [_succeeded("rj-a-1-x", report)])
    assert status["phase"] == "TimedOut"
    assert status["message"] == (
        "TimedOut: the work exceeded its timeout of 45 seconds"
        " (stopped by the worker after 45.002 s of its own running time)"
    )
    assert status["finishedAt"] == "2024-05-01T12:00:20Z"
    complete = _conditions(status)["Complete"]
    assert (complete["status"], complete["reason"]) == ("True", "TimedOut")


def test_work_within_its_timeout_succeeds() -> None:
    report = {"timedOut": False, "sleptSeconds": 18, "timeoutSeconds": 45, "ranSeconds": 18.0}
    status = _status(_job(_condition("Complete")), [_succeeded("rj-a-1-x", report)])
    assert status["phase"] == "Succeeded"
    assert status["message"] == "Succeeded: the worker slept 18 seconds"


def test_without_a_report_a_sleep_longer_than_the_timeout_timed_out() -> None:
    previous = {"sleepSeconds": 50}
    status = _status(_job(_condition("Complete")), [_succeeded("rj-a-1-x", None)], previous)
    assert status["phase"] == "TimedOut"
    assert "no report" in status["message"]
    assert "timeout of 45 seconds" in status["message"]


def test_job_deadline_exceeded_is_timed_out_by_the_backstop() -> None:
    failed = _condition("Failed", "DeadlineExceeded", "Job was active longer than specified")
    job = {**_job(failed), "spec": {"activeDeadlineSeconds": 165}}
    status = _status(job, [_running("rj-a-1-x")])
    assert status["phase"] == "TimedOut"
    assert status["message"] == (
        "TimedOut: the Job exceeded its deadline of 165 seconds (timeout 45 s + start-up"
        " allowance 120 s), counted from the Job's start; stopped by the Job controller"
        " (Job was active longer than specified)"
    )
    assert status["finishedAt"] == "2024-05-01T12:00:20Z"
    assert _conditions(status)["Complete"]["reason"] == "TimedOut"


def _job_with_start_deadline(seconds: int) -> dict[str, Any]:
    job = _job()
    job["metadata"]["annotations"] = {"reportjobs.io/start-deadline-seconds": str(seconds)}
    return job


def _created_status(
    job: dict[str, Any], pods: list[dict[str, Any]], *, created: datetime, now: datetime
) -> dict[str, Any]:
    rj = reportjob(
        name="rj-a-1", timeout=45, created=created.timestamp(), status={"sleepSeconds": 18}
    )
    return build_status(reportjob=rj, job=job, pods=pods, sleep_seconds=18, now=now)


def test_start_deadline_times_out_work_that_never_started() -> None:
    created = NOW - timedelta(seconds=30)
    waiting = _pod("rj-a-1-x", "Pending")
    status = _created_status(_job_with_start_deadline(30), [waiting], created=created, now=NOW)
    assert status["phase"] == "TimedOut"
    assert status["message"] == (
        "TimedOut: the work did not start within its start deadline of 30 seconds after the"
        " job was created; stopped by the operator (no worker container had started)"
    )
    assert status["finishedAt"] == NOW_TEXT
    assert "startedAt" not in status


def test_start_deadline_names_why_the_pod_waits() -> None:
    created = NOW - timedelta(seconds=60)
    waiting = _pod("rj-a-1-x", "Pending", {"waiting": {"reason": "ErrImagePull"}})
    status = _created_status(_job_with_start_deadline(30), [waiting], created=created, now=NOW)
    assert status["phase"] == "TimedOut"
    assert status["message"].endswith("(ErrImagePull)")


def test_start_deadline_not_reached_yet_is_pending() -> None:
    created = NOW - timedelta(seconds=29)
    pending = [_pod("rj-a-1-x", "Pending")]
    status = _created_status(_job_with_start_deadline(30), pending, created=created, now=NOW)
    assert status["phase"] == "Pending"


def test_without_a_start_deadline_waiting_is_pending() -> None:
    created = NOW - timedelta(days=1)
    status = _created_status(_job(), [_pod("p", "Pending")], created=created, now=NOW)
    assert status["phase"] == "Pending"


def test_start_deadline_does_not_apply_once_the_work_started() -> None:
    created = NOW - timedelta(seconds=300)
    job = _job_with_start_deadline(30)
    running = _created_status(job, [_running("p")], created=created, now=NOW)
    assert running["phase"] == "Running"
    # A retry waiting for its pod: the work had started (startedAt), the backstop bounds it.
    rj = reportjob(
        name="rj-a-1",
        timeout=45,
        created=created.timestamp(),
        status={"sleepSeconds": 18, "phase": "Running", "startedAt": EARLIER, "pods": ["p"]},
    )
    retry = build_status(
        reportjob=rj, job=job, pods=[_pod("q", "Pending")], sleep_seconds=18, now=NOW
    )
    # Once started it stays Running until the Job finishes: never a step back to Pending.
    assert (retry["phase"], retry["message"]) == ("Running", "Running (attempt 2)")
    # A pod that ran and failed started the work too.
    failed = _pod("p", "Failed", {"terminated": {"exitCode": 1, "startedAt": EARLIER}})
    assert _created_status(job, [failed], created=created, now=NOW)["phase"] == "Running"


def test_an_exited_worker_stays_running_until_the_job_completes() -> None:
    """Between the pod's Succeeded and the Job's Complete condition, no write is due."""
    running = _status(_job(), [_running("p")])
    exited = _status(_job(), [_succeeded("p", {"sleptSeconds": 18})], previous=running)
    assert exited == running
    assert not worth_writing(running, exited)


def test_a_pending_pod_alone_is_not_worth_a_write() -> None:
    created = _status(_job(), [])
    pending = _status(_job(), [_pod("p", "Pending")], previous=created)
    assert (pending["attempts"], pending["pods"]) == (1, ["p"])
    assert not worth_writing(created, pending)
    waiting = _pod("p", "Pending", {"waiting": {"reason": "ErrImagePull", "message": "no"}})
    assert worth_writing(created, _status(_job(), [waiting], previous=created))
    assert worth_writing(created, _status(_job(), [_running("p")], previous=created))
    assert worth_writing({}, created)


def test_other_failures_are_failed() -> None:
    failed = _condition("Failed", "BackoffLimitExceeded", "Job has reached the backoff limit")
    status = _status(_job(failed), [])
    assert status["phase"] == "Failed"
    assert "BackoffLimitExceeded" in status["message"]


def test_a_false_condition_does_not_count() -> None:
    job = _job({"type": "Failed", "status": "False", "reason": "DeadlineExceeded"})
    assert _status(job, [_running("p")])["phase"] == "Running"


def test_attempts_are_the_union_of_pod_names() -> None:
    previous = {"sleepSeconds": 18, "phase": "Running", "pods": ["rj-a-1-a", "rj-a-1-b"]}
    pods = [_pod("rj-a-1-b", "Failed"), _running("rj-a-1-c")]
    status = _status(_job(), pods, previous)
    assert status["pods"] == ["rj-a-1-a", "rj-a-1-b", "rj-a-1-c"]
    assert status["attempts"] == 3


def test_terminal_phases_never_change() -> None:
    previous = {
        "sleepSeconds": 18,
        "phase": "Succeeded",
        "finishedAt": EARLIER,
        "message": "Succeeded: the worker slept 18 seconds",
        "pods": ["rj-a-1-a"],
        "jobName": "rj-a-1",
    }
    failed = _job(_condition("Failed", "DeadlineExceeded"))
    for job in (None, failed):
        status = _status(job, [], previous)
        assert status["phase"] == "Succeeded"
        assert status["finishedAt"] == EARLIER
        assert status["message"] == previous["message"]
        assert status["attempts"] == 1


def test_condition_times_move_only_on_transitions() -> None:
    first = _status(_job(), [_running("p")])
    assert _conditions(first)["Complete"]["lastTransitionTime"] == NOW_TEXT
    aged = {
        **first,
        "conditions": [{**c, "lastTransitionTime": EARLIER} for c in first["conditions"]],
    }
    same = _status(_job(), [_running("p")], aged)
    assert {c["lastTransitionTime"] for c in same["conditions"]} == {EARLIER}
    assert same == aged

    done = _status(_job(_condition("Complete")), [_succeeded("p", {"sleptSeconds": 18})], aged)
    assert _conditions(done)["Complete"]["lastTransitionTime"] == NOW_TEXT
    assert _conditions(done)["JobCreated"]["lastTransitionTime"] == EARLIER


def test_observed_generation() -> None:
    rj = reportjob(status={"sleepSeconds": 1})
    rj["metadata"]["generation"] = 4
    status = build_status(reportjob=rj, job=None, pods=[], sleep_seconds=None, now=NOW)
    assert status["observedGeneration"] == 4
    assert {c["observedGeneration"] for c in status["conditions"]} == {4}
