"""The status of a ReportJob from its Job and worker pods (pure)."""

from collections.abc import Mapping, Sequence
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
from reportjobs_operator.conditions import condition
from reportjobs_operator.k8s import (
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


def _succeeded(
    pods: Sequence[Mapping[str, Any]], previous: Mapping[str, Any], finished_at: str
) -> _Outcome:
    report = next((r for r in map(termination_report, pods) if r is not None), None)
    if report is not None and "sleptSeconds" in report:
        message = f"Succeeded: the worker slept {report['sleptSeconds']} seconds"
    else:
        message = (
            f"Succeeded (no report from the worker; drawn sleep {previous.get('sleepSeconds')} s)"
        )
    return _Outcome(Phase.SUCCEEDED, message, finished_at)


def _failed(failed: Mapping[str, Any], reportjob: ReportJobBody, finished_at: str) -> _Outcome:
    reason = str(failed.get("reason") or "Failed")
    detail = failed.get("message") or reason
    if reason == "DeadlineExceeded":
        timeout = spec_of(reportjob).get("timeoutSeconds")
        message = f"TimedOut: the job exceeded its timeout of {timeout} seconds ({detail})"
        return _Outcome(Phase.TIMED_OUT, message, finished_at)
    return _Outcome(Phase.FAILED, f"Failed: {reason}: {detail}", finished_at)


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
    now: str,
) -> _Outcome:
    previous = status_of(reportjob)
    before = Phase(previous.get("phase", Phase.PENDING))
    if before.is_terminal:
        return _Outcome(before, previous.get("message", ""), previous.get("finishedAt") or now)
    if job is not None:
        if (complete := true_condition(job, "Complete")) is not None:
            return _succeeded(pods, previous, _finished_at(complete, now))
        if (failed := true_condition(job, "Failed")) is not None:
            return _failed(failed, reportjob, _finished_at(failed, now))
    if any(is_running(pod) for pod in pods):
        return _Outcome(Phase.RUNNING, f"Running (attempt {attempts})")
    return _pending(job, pods)


def _started_at(previous: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> str | None:
    if previous.get("startedAt"):
        return str(previous["startedAt"])
    starts = [s for s in (normalize_rfc3339(container_started_at(pod)) for pod in pods) if s]
    return min(starts, default=None)


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
    outcome = _outcome(reportjob=reportjob, job=job, pods=pods, attempts=len(names), now=stamp)
    earlier = previous.get("conditions") or []
    job_created = job is not None or bool(previous.get("jobName"))
    conditions = [
        condition(
            kind=JOB_CREATED,
            status=job_created,
            reason="Created" if job_created else "NotCreated",
            message=f"Job {name_of(reportjob)}" if job_created else "the Job is not created yet",
            previous=earlier,
            now=stamp,
            generation=generation,
        ),
        condition(
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
