"""Read-only accessors over a ReportJob object as the API server returns it (a JSON dict)."""

from collections.abc import Mapping
from typing import Any

from reportjobs_model.timestamps import unix_of
from reportjobs_model.window import is_late

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


def created_unix(reportjob: ReportJobBody) -> float:
    """metadata.creationTimestamp (set by the API server) in unix seconds."""
    return unix_of(str(metadata_of(reportjob)["creationTimestamp"]))


def is_void(reportjob: ReportJobBody) -> bool:
    """Late: created after its own bucket (in its own window) ended. Nobody answers with it."""
    spec = spec_of(reportjob)
    return is_late(
        created_unix=created_unix(reportjob),
        bucket=int(spec["bucket"]),
        window=int(spec["windowSeconds"]),
    )


def is_deleting(reportjob: ReportJobBody) -> bool:
    return metadata_of(reportjob).get("deletionTimestamp") is not None
