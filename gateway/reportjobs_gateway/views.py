"""Pure mapping of a ReportJob object to what the API shows."""

from collections.abc import Sequence

from reportjobs_gateway.schemas import JobPublic
from reportjobs_model.public import job_view
from reportjobs_model.reportjob import ReportJobBody, accepted_unix


def to_public(reportjob: ReportJobBody) -> JobPublic:
    return JobPublic.model_validate(job_view(reportjob))


def newest_first(reportjobs: Sequence[ReportJobBody]) -> list[ReportJobBody]:
    """Newest first (an object's jobs are accepted at least a window apart)."""
    return sorted(reportjobs, key=accepted_unix, reverse=True)
