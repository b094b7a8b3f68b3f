"""The objects the gateway writes: window shards and ReportJobs (pure)."""

from collections.abc import Mapping

from reportjobs_gateway.ports import ReportJob, WindowShard
from reportjobs_model import crd, labels
from reportjobs_model.naming import object_hash
from reportjobs_model.timestamps import format_unix
from reportjobs_model.window import Claim


def build_window_shard(
    *, name: str, data: Mapping[str, str], resource_version: str | None
) -> WindowShard:
    """A ConfigMap of open claims; with the resourceVersion it replaces (None: a create)."""
    metadata: dict[str, object] = {
        "name": name,
        "labels": {labels.MANAGED_BY: labels.GATEWAY, labels.COMPONENT: labels.DEDUP_WINDOWS},
    }
    if resource_version is not None:
        metadata["resourceVersion"] = resource_version
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": dict(data)}


def build_reportjob(*, object_id: str, claim: Claim) -> ReportJob:
    """The job a claim names: the same name and spec whoever builds it."""
    return {
        "apiVersion": crd.API_VERSION,
        "kind": crd.KIND,
        "metadata": {
            "name": claim.job_name,
            "labels": {
                labels.MANAGED_BY: labels.GATEWAY,
                labels.OBJECT_HASH: object_hash(object_id),
            },
        },
        "spec": {
            "objectId": object_id,
            "timeoutSeconds": claim.timeout_seconds,
            "windowSeconds": claim.window_seconds,
            "acceptedAt": format_unix(claim.accepted_at),
        },
    }
