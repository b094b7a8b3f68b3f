"""The status of a ReportJob from its Job and worker pods (pure)."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reportjobs_model.phase import Phase
from reportjobs_model.reportjob import (
    ReportJobBody,
    is_cancel_requested,
    is_deleting,
    metadata_of,
    name_of,
    spec_of,
    status_of,
)
from reportjobs_model.timestamps import format_rfc3339, normalize_rfc3339
from reportjobs_operator.deadlines import start_deadline_passed
from reportjobs_operator.job_pod_fields import (
    container_started_at,
    is_running,
    termination_report,
    true_condition,
    waiting_reason,
)
from reportjobs_operator.notifications import initial
from reportjobs_operator.ports import Obj

DELETED_MESSAGE = (
    "Cancelled: the ReportJob was deleted; its work was stopped, and it goes once its dedup "
    "window is over"
)

JOB_CREATED = "JobCreated"
COMPLETE = "Complete"


@dataclass(frozen=True, slots=True)
class _Outcome:
    phase: Phase
    message: str
    finished_at: str | None = None


def _finished_at(job_condition: Mapping[str, Any], now: str) -> str:
    return normalize_rfc3339(job_condition.get("lastTransitionTime")) or now


def _completed(
    pods: Sequence[Mapping[str, Any]],
    reportjob: ReportJobBody,
    finished_at: str,
    sleep: int | None,
) -> _Outcome:
    """The worker exits 0 both when the work is done and when it stopped at its timeout."""
    timeout = spec_of(reportjob).get("timeoutSeconds")
    report = next((r for r in map(termination_report, pods) if r is not None), None)
    if report is not None and report.get("timedOut") is True:
        message = (
            f"TimedOut: the work exceeded its timeout of {report.get('timeoutSeconds', timeout)}"
            f" seconds (stopped by the worker after {report.get('ranSeconds')} s of its own"
            " running time)"
        )
        return _Outcome(Phase.TIMED_OUT, message, finished_at)
    if report is not None and "sleptSeconds" in report:
        message = f"Succeeded: the worker slept {report['sleptSeconds']} seconds"
        return _Outcome(Phase.SUCCEEDED, message, finished_at)
    if isinstance(sleep, int) and isinstance(timeout, int) and sleep > timeout:
        message = (
            f"TimedOut: the work exceeded its timeout of {timeout} seconds (no report from the"
            f" worker; its drawn sleep of {sleep} s is longer, so the worker stopped at the"
            " timeout)"
        )
        return _Outcome(Phase.TIMED_OUT, message, finished_at)
    message = f"Succeeded (no report from the worker; drawn sleep {sleep} s)"
    return _Outcome(Phase.SUCCEEDED, message, finished_at)


def _deadline_exceeded(job: Mapping[str, Any], reportjob: ReportJobBody, detail: str) -> str:
    """The backstop fired: the Job controller stopped the Job at activeDeadlineSeconds."""
    timeout = spec_of(reportjob).get("timeoutSeconds")
    deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
    if isinstance(deadline, int) and isinstance(timeout, int):
        limit = (
            f"its deadline of {deadline} seconds (timeout {timeout} s + start-up allowance"
            f" {deadline - timeout} s)"
        )
    else:
        limit = f"its deadline (timeout {timeout} s + start-up allowance)"
    return (
        f"TimedOut: the Job exceeded {limit}, counted from the Job's start; stopped by the Job"
        f" controller ({detail})"
    )


def _failed(
    failed: Mapping[str, Any], job: Mapping[str, Any], reportjob: ReportJobBody, finished_at: str
) -> _Outcome:
    reason = str(failed.get("reason") or "Failed")
    detail = str(failed.get("message") or reason)
    if reason == "DeadlineExceeded":
        message = _deadline_exceeded(job, reportjob, detail)
        return _Outcome(Phase.TIMED_OUT, message, finished_at)
    return _Outcome(Phase.FAILED, f"Failed: {reason}: {detail}", finished_at)


def _not_started(deadline: int, pods: Sequence[Mapping[str, Any]], now: str) -> _Outcome:
    waiting = next((w for w in map(waiting_reason, pods) if w is not None), None)
    message = (
        f"TimedOut: the work did not start within its start deadline of {deadline} seconds"
        f" after the job was created; stopped by the operator"
        f" ({waiting or 'no worker container had started'})"
    )
    return _Outcome(Phase.TIMED_OUT, message, now)


def _pending(job: Mapping[str, Any] | None, pods: Sequence[Mapping[str, Any]]) -> _Outcome:
    if job is None:
        return _Outcome(Phase.PENDING, "Pending: the Job is not created yet")
    waiting = next((w for w in map(waiting_reason, pods) if w is not None), None)
    return _Outcome(Phase.PENDING, f"Pending: {waiting or 'waiting for a worker pod to run'}")


def _outcome(
    *,
    reportjob: ReportJobBody,
    job: Mapping[str, Any] | None,
    pods: Sequence[Mapping[str, Any]],
    attempts: int,
    sleep: int | None,
    now: datetime,
) -> _Outcome:
    previous = status_of(reportjob)
    stamp = format_rfc3339(now)
    before = Phase(previous.get("phase", Phase.PENDING))
    if before.is_terminal:
        return _Outcome(before, previous.get("message", ""), previous.get("finishedAt") or stamp)
    if job is not None:
        if (complete := true_condition(job, "Complete")) is not None:
            return _completed(pods, reportjob, _finished_at(complete, stamp), sleep)
        if (failed := true_condition(job, "Failed")) is not None:
            return _failed(failed, job, reportjob, _finished_at(failed, stamp))
    if is_cancel_requested(reportjob):  # a Job that finished first keeps its own outcome
        return _Outcome(Phase.CANCELLED, "Cancelled: by a DELETE of the job", stamp)
    if is_deleting(reportjob):
        return _Outcome(Phase.CANCELLED, DELETED_MESSAGE, stamp)
    started = _started_at(previous, pods) is not None
    if started or any(is_running(pod) for pod in pods):
        # Once started it stays Running until the Job is finished (a worker that has exited,
        # or a retry whose pod is pending, is not a step back to Pending).
        return _Outcome(Phase.RUNNING, f"Running (attempt {attempts})")
    if job is not None:
        deadline = start_deadline_passed(reportjob=reportjob, job=job, now=now)
        if deadline is not None:
            return _not_started(deadline, pods, stamp)
    return _pending(job, pods)


def _started_at(previous: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> str | None:
    if previous.get("startedAt"):
        return str(previous["startedAt"])
    starts = [s for s in (normalize_rfc3339(container_started_at(pod)) for pod in pods) if s]
    return min(starts, default=None)


def _condition(
    *,
    kind: str,
    status: bool,
    reason: str,
    message: str,
    previous: Iterable[Mapping[str, Any]],
    now: str,
    generation: int,
) -> Obj:
    """A condition of type `kind`; lastTransitionTime moves only when status or reason does."""
    text = "True" if status else "False"
    before = next((c for c in previous if c.get("type") == kind), None)
    unchanged = before is not None and (before.get("status"), before.get("reason")) == (
        text,
        reason,
    )
    return {
        "type": kind,
        "status": text,
        "reason": reason,
        "message": message,
        "lastTransitionTime": before["lastTransitionTime"] if unchanged and before else now,
        "observedGeneration": generation,
    }


def build_status(
    *,
    reportjob: ReportJobBody,
    job: Mapping[str, Any] | None,
    pods: Sequence[Mapping[str, Any]],
    sleep_seconds: int | None,
    now: datetime,
) -> Obj:
    """The complete new status; fields that are not known yet are left out."""
    previous = status_of(reportjob)
    stamp = format_rfc3339(now)
    generation = int(metadata_of(reportjob).get("generation", 1))
    names = sorted(set(previous.get("pods") or []) | {pod["metadata"]["name"] for pod in pods})
    outcome = _outcome(
        reportjob=reportjob,
        job=job,
        pods=pods,
        attempts=len(names),
        sleep=sleep_seconds,
        now=now,
    )
    earlier = previous.get("conditions") or []
    job_created = job is not None or bool(previous.get("jobName"))
    conditions = [
        _condition(
            kind=JOB_CREATED,
            status=job_created,
            reason="Created" if job_created else "NotCreated",
            message=f"Job {name_of(reportjob)}" if job_created else "the Job is not created yet",
            previous=earlier,
            now=stamp,
            generation=generation,
        ),
        _condition(
            kind=COMPLETE,
            status=outcome.phase.is_terminal,
            reason=outcome.phase.value,
            message=outcome.message,
            previous=earlier,
            now=stamp,
            generation=generation,
        ),
    ]
    status: Obj = {
        "phase": outcome.phase.value,
        "sleepSeconds": sleep_seconds,
        "attempts": len(names),
        "pods": names,
        "jobName": name_of(reportjob) if job_created else None,
        "startedAt": _started_at(previous, pods),
        "finishedAt": outcome.finished_at,
        "message": outcome.message,
        "observedGeneration": generation,
        "conditions": conditions,
        "notification": initial(reportjob=reportjob, phase=outcome.phase, now=now),
    }
    return {key: value for key, value in status.items() if value is not None}


def worth_writing(previous: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Whether the new status says something the recorded one does not.

    A pending worker pod that has not started changes only `pods` and `attempts`: that is left
    for the next write (start, retry or outcome), which records it anyway; each write is one of
    the operator's few API requests per job.
    """
    if status == previous:
        return False
    quiet = {"pods", "attempts"}
    if status.get("phase") != Phase.PENDING.value or not previous.get("phase"):
        return True
    return {k: v for k, v in status.items() if k not in quiet} != {
        k: v for k, v in previous.items() if k not in quiet
    }
