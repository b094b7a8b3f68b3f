"""Read-only accessors over a ReportJob object as the API server returns it (a JSON dict)."""

from collections.abc import Mapping
from typing import Any

from reportjobs_model.timestamps import unix_of

ReportJobBody = Mapping[str, Any]


def metadata_of(reportjob: ReportJobBody) -> Mapping[str, Any]:
    metadata: Mapping[str, Any] = reportjob.get("metadata") or {}
    return metadata


def spec_of(reportjob: ReportJobBody) -> Mapping[str, Any]:
    spec: Mapping[str, Any] = reportjob.get("spec") or {}
    return spec


def status_of(reportjob: ReportJobBody) -> Mapping[str, Any]:
    status: Mapping[str, Any] = reportjob.get("status") or {}
    return status


def name_of(reportjob: ReportJobBody) -> str:
    return str(metadata_of(reportjob)["name"])


def uid_of(reportjob: ReportJobBody) -> str:
    return str(metadata_of(reportjob)["uid"])


def accepted_unix(reportjob: ReportJobBody) -> float:
    """spec.acceptedAt (the server time its dedup window began) in unix seconds."""
    return unix_of(str(spec_of(reportjob)["acceptedAt"]))


def window_end_unix(reportjob: ReportJobBody) -> float:
    """When the job's dedup window ends: a submission from then on may start a new job."""
    return accepted_unix(reportjob) + int(spec_of(reportjob)["windowSeconds"])


def is_deleting(reportjob: ReportJobBody) -> bool:
    return metadata_of(reportjob).get("deletionTimestamp") is not None
