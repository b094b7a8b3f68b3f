"""The window shards the gateway writes (pure); ReportJobs are built by the model's
`build_reportjob`, as the operator builds those it completes."""

from collections.abc import Mapping

from reportjobs_gateway.ports import WindowShard
from reportjobs_model import labels


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
