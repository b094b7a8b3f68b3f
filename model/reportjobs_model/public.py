"""What the API shows of a job, as plain JSON (pure): the gateway's answers and the webhook
deliveries' `data` are the same view."""

from typing import Any

from reportjobs_model.phase import Phase
from reportjobs_model.reportjob import ReportJobBody, metadata_of, spec_of, status_of


def notification_view(status: dict[str, Any] | Any) -> dict[str, Any] | None:
    notification = (status or {}).get("notification")
    if not notification:
        return None
    return {
        "state": notification.get("state"),
        "attempts": notification.get("attempts", 0),
        "last_error": notification.get("lastError"),
        "delivered_at": notification.get("deliveredAt"),
    }


def job_view(reportjob: ReportJobBody) -> dict[str, Any]:
    metadata, spec, status = metadata_of(reportjob), spec_of(reportjob), status_of(reportjob)
    return {
        "job_id": metadata["name"],
        "object_id": spec["objectId"],
        "status": str(Phase(status.get("phase", Phase.PENDING))),
        "sleep_seconds": status.get("sleepSeconds"),
        "timeout_seconds": spec["timeoutSeconds"],
        "attempts": status.get("attempts", 0),
        "created_at": spec.get("acceptedAt"),
        "started_at": status.get("startedAt"),
        "finished_at": status.get("finishedAt"),
        "message": status.get("message"),
        "callback_url": spec.get("callbackUrl"),
        "notification": notification_view(status),
    }
