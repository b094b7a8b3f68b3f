"""The batch Job that runs a ReportJob's worker (pure)."""

from dataclasses import dataclass

from reportjobs_model import crd, labels
from reportjobs_model.reportjob import ReportJobBody, metadata_of, spec_of
from reportjobs_model.shards import bucket_of
from reportjobs_operator.deadlines import (
    DEFAULT_STARTUP_ALLOWANCE_SECONDS,
    START_DEADLINE_ANNOTATION,
    backstop_seconds,
)
from reportjobs_operator.job_pod_fields import SLEEP_ANNOTATION
from reportjobs_operator.ports import Obj

WORKER_CONTAINER = "worker"


@dataclass(frozen=True, slots=True)
class WorkerTemplate:
    """What every worker Job shares (from the operator's settings).

    `startup_allowance_seconds` is added to a ReportJob's timeout to make the Job's
    activeDeadlineSeconds (a backstop; the worker enforces the timeout itself).
    `start_deadline_seconds`, when set, is written on the Job for build_status to enforce.
    """

    image: str
    pull_policy: str
    cpu_request: str
    memory_request: str
    memory_limit: str
    uid: int
    backoff_limit: int
    service_account: str | None = None
    startup_allowance_seconds: int = DEFAULT_STARTUP_ALLOWANCE_SECONDS
    start_deadline_seconds: int | None = None


def _security_context(uid: int) -> Obj:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _worker_container(*, sleep_seconds: int, timeout_seconds: int, worker: WorkerTemplate) -> Obj:
    return {
        "name": WORKER_CONTAINER,
        "image": worker.image,
        "imagePullPolicy": worker.pull_policy,
        "command": [
            "reportjobs-worker",
            "--timeout-seconds",
            str(timeout_seconds),
            "--seconds",
            str(sleep_seconds),
        ],
        "env": [
            {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
            {"name": "PYTHONUNBUFFERED", "value": "1"},
        ],
        "resources": {
            "requests": {"cpu": worker.cpu_request, "memory": worker.memory_request},
            "limits": {"memory": worker.memory_limit},
        },
        "securityContext": _security_context(worker.uid),
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }


def _spread_over_nodes() -> list[Obj]:
    """Soft: worker pods of all ReportJobs spread over nodes; never blocks scheduling."""
    return [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {
                "matchExpressions": [{"key": labels.REPORTJOB, "operator": "Exists"}]
            },
        }
    ]


def build_job(*, reportjob: ReportJobBody, sleep_seconds: int, worker: WorkerTemplate) -> Obj:
    """Job named like the ReportJob, controlled by it, running the drawn sleep.

    The sleep is also written on the Job (an annotation): the Job, created under the
    ReportJob's name exactly once, is where the drawn sleep is first persisted.

    The worker enforces the timeout from its own start; activeDeadlineSeconds (timeout plus
    start-up allowance, counted from the Job's start) is the backstop.
    """
    metadata = metadata_of(reportjob)
    name = str(metadata["name"])
    job_labels = {
        labels.MANAGED_BY: labels.OPERATOR,
        labels.REPORTJOB: name,
        labels.BUCKET: str(bucket_of(name)),
    }
    owner = {
        "apiVersion": crd.API_VERSION,
        "kind": crd.KIND,
        "name": name,
        "uid": metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    timeout_seconds = int(spec_of(reportjob)["timeoutSeconds"])
    pod_spec = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 10,
        "securityContext": {"runAsNonRoot": True, "runAsUser": worker.uid, "fsGroup": worker.uid},
        "containers": [
            _worker_container(
                sleep_seconds=sleep_seconds, timeout_seconds=timeout_seconds, worker=worker
            )
        ],
        "topologySpreadConstraints": _spread_over_nodes(),
    }
    if worker.service_account:
        pod_spec["serviceAccountName"] = worker.service_account
    annotations = {SLEEP_ANNOTATION: str(sleep_seconds)}
    if worker.start_deadline_seconds is not None:
        annotations[START_DEADLINE_ANNOTATION] = str(worker.start_deadline_seconds)
    job_metadata: Obj = {
        "name": name,
        "labels": job_labels,
        "annotations": annotations,
        "ownerReferences": [owner],
    }
    deadline = backstop_seconds(
        timeout_seconds=timeout_seconds,
        startup_allowance_seconds=worker.startup_allowance_seconds,
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": job_metadata,
        "spec": {
            "activeDeadlineSeconds": deadline,
            "backoffLimit": worker.backoff_limit,
            "template": {"metadata": {"labels": job_labels}, "spec": pod_spec},
        },
    }
