"""The batch Job a ReportJob runs as."""

from dataclasses import replace
from typing import Any

from reportjobs_operator.manifests import build_job
from tests.unit.fakes import WORKER, reportjob


def _job(**worker: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    rj = reportjob(name="rj-abc-7", timeout=45, status={"sleepSeconds": 23})
    template = replace(WORKER, **worker)
    return rj, build_job(reportjob=rj, worker=template)


def test_identity_labels_and_owner() -> None:
    rj, job = _job()
    labels = {
        "app.kubernetes.io/managed-by": "reportjobs-operator",
        "reportjobs.io/reportjob": "rj-abc-7",
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


def test_deadline_backoff_and_pod_policy() -> None:
    _, job = _job()
    spec = job["spec"]
    assert spec["activeDeadlineSeconds"] == 45
    assert spec["backoffLimit"] == 3
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert "serviceAccountName" not in pod


def test_worker_container() -> None:
    _, job = _job()
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["reportjobs-worker", "--seconds", "23"]
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
