"""The ReportJob object the gateway creates."""

from reportjobs_gateway.ports import ReportJob
from reportjobs_model import crd, labels
from reportjobs_model.naming import object_hash


def build_reportjob(
    *, name: str, object_id: str, timeout_seconds: int, window_seconds: int, bucket: int
) -> ReportJob:
    return {
        "apiVersion": crd.API_VERSION,
        "kind": crd.KIND,
        "metadata": {
            "name": name,
            "labels": {
                labels.MANAGED_BY: labels.GATEWAY,
                labels.OBJECT_HASH: object_hash(object_id),
            },
        },
        "spec": {
            "objectId": object_id,
            "timeoutSeconds": timeout_seconds,
            "windowSeconds": window_seconds,
            "bucket": bucket,
        },
    }
