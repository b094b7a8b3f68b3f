"""The batch Job a ReportJob runs as."""

import hashlib
from dataclasses import replace
from typing import Any

from reportjobs_operator.deadlines import start_deadline_of
from reportjobs_operator.job_pod_fields import sleep_seconds_of
from reportjobs_operator.manifests import build_job
from reportjobs_worker.main import parse_args
from tests.unit.fakes import WORKER, reportjob


def _job(**worker: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    rj = reportjob(name="rj-abc-7", timeout=45, status={"sleepSeconds": 23})
    template = replace(WORKER, **worker)
    return rj, build_job(reportjob=rj, sleep_seconds=23, worker=template)


def test_identity_labels_and_owner() -> None:
    rj, job = _job()
    labels = {
        "app.kubernetes.io/managed-by": "reportjobs-operator",
        "reportjobs.io/reportjob": "rj-abc-7",
        # the shard's bucket: the first byte of the name's SHA-256
        "reportjobs.io/bucket": str(hashlib.sha256(b"rj-abc-7").digest()[0]),
    }
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert job["metadata"]["name"] == "rj-abc-7"
    assert job["metadata"]["labels"] == labels
    assert job["spec"]["template"]["metadata"]["labels"] == labels
    (owner,) = job["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "reportjobs.io/v1alpha1",
        "kind": "ReportJob",
        "name": "rj-abc-7",
        "uid": rj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_deadline_is_a_backstop_timeout_plus_startup_allowance() -> None:
    _, job = _job()
    assert job["spec"]["activeDeadlineSeconds"] == 45 + 120  # the default allowance
    _, job = _job(startup_allowance_seconds=7)
    assert job["spec"]["activeDeadlineSeconds"] == 45 + 7
    _, job = _job(startup_allowance_seconds=0)
    assert job["spec"]["activeDeadlineSeconds"] == 45


def test_start_deadline_is_written_on_the_job_only_when_configured() -> None:
    _, job = _job()
    assert job["metadata"]["annotations"] == {"reportjobs.io/sleep-seconds": "23"}
    assert start_deadline_of(job) is None
    _, job = _job(start_deadline_seconds=90)
    assert job["metadata"]["annotations"] == {
        "reportjobs.io/sleep-seconds": "23",
        "reportjobs.io/start-deadline-seconds": "90",
    }
    assert start_deadline_of(job) == 90


def test_the_drawn_sleep_is_persisted_on_the_job() -> None:
    _, job = _job()
    assert sleep_seconds_of(job) == 23
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "23"
    assert (
        sleep_seconds_of({"metadata": {"annotations": {"reportjobs.io/sleep-seconds": "x"}}})
        is None
    )
    assert sleep_seconds_of({"metadata": {}}) is None


def test_backoff_and_pod_policy() -> None:
    _, job = _job()
    spec = job["spec"]
    assert spec["backoffLimit"] == 3
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert "serviceAccountName" not in pod


def test_worker_container() -> None:
    _, job = _job()
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == [
        "reportjobs-worker",
        "--timeout-seconds",
        "45",
        "--seconds",
        "23",
    ]
    assert (container["image"], container["imagePullPolicy"]) == ("reportjobs:dev", "Never")
    assert container["resources"] == {
        "requests": {"cpu": "10m", "memory": "32Mi"},
        "limits": {"memory": "64Mi"},
    }
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 10001
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container["terminationMessagePath"] == "/dev/termination-log"


def test_the_worker_understands_its_command() -> None:
    _, job = _job()
    (container,) = job["spec"]["template"]["spec"]["containers"]
    args = parse_args(container["command"][1:])
    assert (args.seconds, args.timeout_seconds) == (23, 45)


def test_service_account_when_configured() -> None:
    _, job = _job(service_account="reportjobs-worker")
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "reportjobs-worker"


def test_worker_pods_spread_over_nodes_softly() -> None:
    _, job = _job()
    (constraint,) = job["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert constraint["topologyKey"] == "kubernetes.io/hostname"
    assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"
    (selector,) = constraint["labelSelector"]["matchExpressions"]
    assert selector == {"key": "reportjobs.io/reportjob", "operator": "Exists"}
