"""A ReportJob as a JSON dict: the body a claim names, and read-only accessors over the object
as the API server returns it."""

from collections.abc import Mapping
from typing import Any

from reportjobs_model import crd, labels
from reportjobs_model.naming import object_hash
from reportjobs_model.shards import bucket_of
from reportjobs_model.timestamps import format_unix, unix_of
from reportjobs_model.window import Claim

ReportJobBody = Mapping[str, Any]


def build_reportjob(*, object_id: str, claim: Claim) -> dict[str, Any]:
    """The job a claim names: the same name and spec whoever builds it (the gateway that won the
    claim, or whoever finds the claim without its job)."""
    spec: dict[str, Any] = {
        "objectId": object_id,
        "timeoutSeconds": claim.timeout_seconds,
        "windowSeconds": claim.window_seconds,
        "acceptedAt": format_unix(claim.accepted_at),
    }
    if claim.callback_url is not None:
        spec["callbackUrl"] = claim.callback_url
    return {
        "apiVersion": crd.API_VERSION,
        "kind": crd.KIND,
        "metadata": {
            "name": claim.job_name,
            "finalizers": [crd.FINALIZER],
            "labels": {
                labels.MANAGED_BY: labels.GATEWAY,
                labels.OBJECT_HASH: object_hash(object_id),
                labels.BUCKET: str(bucket_of(claim.job_name)),
            },
        },
        "spec": spec,
    }


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


def is_accepted(reportjob: ReportJobBody) -> bool:
    """Whether the operator has taken it on (it has a status phase): it checked, on a read made
    after the ReportJob was created, that its claim names it. Until then its claim stays in its
    shard (docs/design.md, "Deleting a job")."""
    return "phase" in status_of(reportjob)


def finalizers_of(reportjob: ReportJobBody) -> list[str]:
    return [str(name) for name in metadata_of(reportjob).get("finalizers") or []]


def holds_its_claim(reportjob: ReportJobBody) -> bool:
    """Whether it carries crd.FINALIZER: a deletion waits for its claim to be gone."""
    return crd.FINALIZER in finalizers_of(reportjob)


def is_cancel_requested(reportjob: ReportJobBody) -> bool:
    """spec.cancel: a DELETE of the job asked for it to end Cancelled."""
    return spec_of(reportjob).get("cancel") is True


def with_cancel(reportjob: ReportJobBody) -> dict[str, Any]:
    """The same ReportJob body, asking for cancellation (for a job known only by its claim)."""
    return {**reportjob, "spec": {**spec_of(reportjob), "cancel": True}}
