"""The status of a ReportJob from its Job and worker pods (pure)."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reportjobs_model.phase import Phase
from reportjobs_model.reportjob import (
    ReportJobBody,
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
from reportjobs_operator.ports import Obj

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
    pods: Sequence[Mapping[str, Any]], reportjob: ReportJobBody, finished_at: str
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
    sleep = status_of(reportjob).get("sleepSeconds")
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
    now: datetime,
) -> _Outcome:
    previous = status_of(reportjob)
    stamp = format_rfc3339(now)
    before = Phase(previous.get("phase", Phase.PENDING))
    if before.is_terminal:
        return _Outcome(before, previous.get("message", ""), previous.get("finishedAt") or stamp)
    if job is not None:
        if (complete := true_condition(job, "Complete")) is not None:
            return _completed(pods, reportjob, _finished_at(complete, stamp))
        if (failed := true_condition(job, "Failed")) is not None:
            return _failed(failed, job, reportjob, _finished_at(failed, stamp))
    if any(is_running(pod) for pod in pods):
        return _Outcome(Phase.RUNNING, f"Running (attempt {attempts})")
    started = _started_at(previous, pods) is not None
    if job is not None and not started:
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
    now: datetime,
) -> Obj:
    """The complete new status; fields that are not known yet are left out."""
    previous = status_of(reportjob)
    stamp = format_rfc3339(now)
    generation = int(metadata_of(reportjob).get("generation", 1))
    names = sorted(set(previous.get("pods") or []) | {pod["metadata"]["name"] for pod in pods})
    outcome = _outcome(reportjob=reportjob, job=job, pods=pods, attempts=len(names), now=now)
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
        "sleepSeconds": previous.get("sleepSeconds"),
        "attempts": len(names),
        "pods": names,
        "jobName": name_of(reportjob) if job_created else None,
        "startedAt": _started_at(previous, pods),
        "finishedAt": outcome.finished_at,
        "message": outcome.message,
        "observedGeneration": generation,
        "conditions": conditions,
    }
    return {key: value for key, value in status.items() if value is not None}
