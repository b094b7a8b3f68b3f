"""Telling a job's callback_url its outcome: the delivery state and its rules (pure).

The state lives in the ReportJob's `status.notification`: Pending (with `nextAttemptAt`),
Delivered, or Failed; `attempts`, `lastError`, `deliveredAt`. It is set Pending in the same
status write that makes the job terminal, so it survives restarts and takeovers: whoever owns
the shard delivers when it is due (deliveries.py). An attempt that fails with a connection
error, a timeout, 408, 429 or 5xx is retried after an exponential backoff with jitter, up to
`max_attempts`; any other answer but 2xx fails at once. At least once: a delivery whose 2xx
answer was not yet recorded when its owner died is sent again, with the same `webhook-id`.
"""

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from reportjobs_model.phase import Phase
from reportjobs_model.public import job_view
from reportjobs_model.reportjob import ReportJobBody, name_of, spec_of, status_of
from reportjobs_model.timestamps import format_rfc3339, parse_rfc3339

PENDING: Final = "Pending"
DELIVERED: Final = "Delivered"
FAILED: Final = "Failed"
RETRYABLE_STATUSES: Final = frozenset({408, 429})
EVENT_TYPES: Final = {
    Phase.SUCCEEDED: "job.succeeded",
    Phase.FAILED: "job.failed",
    Phase.TIMED_OUT: "job.timed_out",
    Phase.CANCELLED: "job.cancelled",
}
_RANDOM = random.SystemRandom()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 8
    backoff_seconds: float = 40.0
    """The first wait; each next one doubles (8 attempts: about an hour in all)."""

    def delay(self, attempts: int, *, jitter: Callable[[], float] = _RANDOM.random) -> float:
        """The wait after the `attempts`-th failed attempt: half of base * 2^(n-1), plus a
        random part of the other half."""
        full = float(self.backoff_seconds * 2 ** (attempts - 1))
        return full / 2 + jitter() * full / 2


@dataclass(frozen=True, slots=True)
class Attempt:
    delivered: bool
    retryable: bool
    error: str | None = None


def attempt_of(*, status_code: int | None, error: str | None = None) -> Attempt:
    """How an answer counts (`status_code` None: no answer: a connection error or timeout)."""
    if status_code is None:
        return Attempt(delivered=False, retryable=True, error=error or "no answer")
    if 200 <= status_code < 300:
        return Attempt(delivered=True, retryable=False)
    retryable = status_code in RETRYABLE_STATUSES or status_code >= 500
    return Attempt(delivered=False, retryable=retryable, error=f"answered {status_code}")


def refused(reason: str) -> Attempt:
    """The address the callback's host resolves to now is refused (no SSRF): failed at once."""
    return Attempt(delivered=False, retryable=False, error=reason)


def notification_of(reportjob: ReportJobBody) -> Mapping[str, Any] | None:
    notification: Mapping[str, Any] | None = status_of(reportjob).get("notification")
    return notification


def initial(*, reportjob: ReportJobBody, phase: Phase, now: datetime) -> dict[str, Any] | None:
    """The notification a status write that makes the job terminal carries (None: no callback,
    or one already recorded)."""
    if not phase.is_terminal or not spec_of(reportjob).get("callbackUrl"):
        return None
    previous = notification_of(reportjob)
    if previous:
        return dict(previous)
    return {"state": PENDING, "attempts": 0, "nextAttemptAt": format_rfc3339(now)}


def is_pending(reportjob: ReportJobBody) -> bool:
    return (notification_of(reportjob) or {}).get("state") == PENDING


def due_at(reportjob: ReportJobBody) -> datetime | None:
    """When the next attempt is due (None: nothing to deliver)."""
    notification = notification_of(reportjob) or {}
    if notification.get("state") != PENDING:
        return None
    return parse_rfc3339(str(notification.get("nextAttemptAt")))


def after(
    notification: Mapping[str, Any],
    attempt: Attempt,
    *,
    now: datetime,
    policy: RetryPolicy,
    jitter: Callable[[], float] = _RANDOM.random,
) -> dict[str, Any]:
    attempts = int(notification.get("attempts") or 0) + 1
    stamp = format_rfc3339(now)
    if attempt.delivered:
        return {"state": DELIVERED, "attempts": attempts, "deliveredAt": stamp}
    if not attempt.retryable or attempts >= policy.max_attempts:
        return {"state": FAILED, "attempts": attempts, "lastError": attempt.error}
    wait = timedelta(seconds=policy.delay(attempts, jitter=jitter))
    return {
        "state": PENDING,
        "attempts": attempts,
        "lastError": attempt.error,
        "nextAttemptAt": format_rfc3339(now + wait),
    }


def event_type(reportjob: ReportJobBody) -> str:
    return EVENT_TYPES[Phase(status_of(reportjob).get("phase", Phase.PENDING))]


def webhook_id(reportjob: ReportJobBody) -> str:
    """Stable per job and event: a receiver dedups by it."""
    return f"{name_of(reportjob)}.{event_type(reportjob)}"


def payload(reportjob: ReportJobBody, *, now: datetime) -> str:
    """The body: the event's type, its time, and the job as the API shows it."""
    view = job_view(reportjob)
    view["notification"] = None  # the delivery's own state is not part of the event
    body = {"type": event_type(reportjob), "timestamp": format_rfc3339(now), "data": view}
    return json.dumps(body, separators=(",", ":"), sort_keys=True)
