"""The time limits of a ReportJob (pure).

1. The timeout (`spec.timeoutSeconds`) bounds the worker's own running time: the worker gets
   `--timeout-seconds` and stops itself, counting from its own start.
2. The Job's `activeDeadlineSeconds` is only a backstop: the timeout plus a start-up allowance
   (scheduling, image pull, container start), counted by the Job controller from the Job's start.
3. The optional start deadline: a ReportJob whose work has not started this long after the
   ReportJob was created is TimedOut by the operator. Its value is written on the Job (an
   annotation) when the Job is created, so the decision needs only the ReportJob and the Job.
"""

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from reportjobs_model.reportjob import ReportJobBody, metadata_of
from reportjobs_model.timestamps import parse_rfc3339

START_DEADLINE_ANNOTATION = "reportjobs.io/start-deadline-seconds"
DEFAULT_STARTUP_ALLOWANCE_SECONDS = 120


def backstop_seconds(*, timeout_seconds: int, startup_allowance_seconds: int) -> int:
    """The Job's activeDeadlineSeconds."""
    return timeout_seconds + startup_allowance_seconds


def start_deadline_of(job: Mapping[str, Any]) -> int | None:
    """The start deadline written on the Job, if any (anything but a positive integer: none)."""
    annotations = (job.get("metadata") or {}).get("annotations") or {}
    text = annotations.get(START_DEADLINE_ANNOTATION)
    try:
        seconds = int(str(text))
    except ValueError:
        return None
    return seconds if seconds >= 1 else None


def start_deadline_passed(
    *, reportjob: ReportJobBody, job: Mapping[str, Any], now: datetime
) -> int | None:
    """The Job's start deadline if `now` is past it, counted from the ReportJob's creation."""
    seconds = start_deadline_of(job)
    created = metadata_of(reportjob).get("creationTimestamp")
    if seconds is None or not created:
        return None
    return seconds if now >= parse_rfc3339(str(created)) + timedelta(seconds=seconds) else None
