"""Pure mapping of a ReportJob object to what the API shows."""

from collections.abc import Sequence
from datetime import datetime

from reportjobs_gateway.schemas import JobPublic
from reportjobs_model.phase import Phase
from reportjobs_model.reportjob import (
    ReportJobBody,
    accepted_unix,
    metadata_of,
    spec_of,
    status_of,
)
from reportjobs_model.timestamps import parse_rfc3339


def _moment(text: object) -> datetime | None:
    return None if text is None else parse_rfc3339(str(text))


def to_public(reportjob: ReportJobBody) -> JobPublic:
    metadata, spec, status = metadata_of(reportjob), spec_of(reportjob), status_of(reportjob)
    return JobPublic(
        job_id=metadata["name"],
        object_id=spec["objectId"],
        status=Phase(status.get("phase", Phase.PENDING)),
        sleep_seconds=status.get("sleepSeconds"),
        timeout_seconds=spec["timeoutSeconds"],
        attempts=status.get("attempts", 0),
        created_at=_moment(spec.get("acceptedAt")),
        started_at=_moment(status.get("startedAt")),
        finished_at=_moment(status.get("finishedAt")),
        message=status.get("message"),
    )


def newest_first(reportjobs: Sequence[ReportJobBody]) -> list[ReportJobBody]:
    """Newest first (an object's jobs are accepted at least a window apart)."""
    return sorted(reportjobs, key=accepted_unix, reverse=True)
