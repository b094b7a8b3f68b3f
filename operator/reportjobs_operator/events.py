"""Kubernetes Events on a ReportJob's transitions, so `kubectl describe rj` tells its story
(pure: the bodies; reconcile.py sends them).

One Event per reason and ReportJob, named `<reportjob>.<reason lowercased>`: a second create of
the same one meets 409, so a retried reconcile or a takeover never tells a step twice.
"""

from datetime import datetime
from typing import Final

from reportjobs_model import crd
from reportjobs_model.phase import Phase
from reportjobs_model.reportjob import ReportJobBody, metadata_of
from reportjobs_model.timestamps import format_rfc3339
from reportjobs_operator.ports import Obj

SOURCE: Final = "reportjobs-operator"
ACCEPTED: Final = "Accepted"
JOB_CREATED: Final = "JobCreated"
STARTED: Final = "Started"
WARNINGS: Final = frozenset({Phase.FAILED.value, Phase.TIMED_OUT.value, "NotificationFailed"})

_PHASE_REASONS: Final = {
    Phase.RUNNING: STARTED,
    Phase.SUCCEEDED: Phase.SUCCEEDED.value,
    Phase.FAILED: Phase.FAILED.value,
    Phase.TIMED_OUT: Phase.TIMED_OUT.value,
    Phase.CANCELLED: Phase.CANCELLED.value,
}


def reason_of_phase(phase: Phase) -> str | None:
    """The Event a status moving to `phase` tells (None: Pending tells nothing)."""
    return _PHASE_REASONS.get(phase)


def build_event(
    *, reportjob: ReportJobBody, reason: str, message: str, now: datetime, reporter: str
) -> Obj:
    metadata = metadata_of(reportjob)
    stamp = format_rfc3339(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{metadata['name']}.{reason.lower()}",
            "namespace": metadata.get("namespace"),
        },
        "involvedObject": {
            "apiVersion": crd.API_VERSION,
            "kind": crd.KIND,
            "name": metadata["name"],
            "namespace": metadata.get("namespace"),
            "uid": metadata.get("uid"),
            "resourceVersion": metadata.get("resourceVersion"),
        },
        "reason": reason,
        "message": message,
        "type": "Warning" if reason in WARNINGS else "Normal",
        "source": {"component": SOURCE},
        "reportingComponent": SOURCE,
        "reportingInstance": reporter,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
