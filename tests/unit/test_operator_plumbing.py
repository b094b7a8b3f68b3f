"""The work queue, the index's change filter and the shared client's request naming."""

import asyncio
from typing import Any, cast

import pytest

from reportjobs_kube.client import KubeClient
from reportjobs_kube.informer import is_older
from reportjobs_kube.metrics import verb_and_resource
from reportjobs_model.shards import selector_of
from reportjobs_operator.index import Index, trim_job, trim_pod
from reportjobs_operator.workqueue import WorkQueue


async def test_a_key_is_queued_once_and_never_worked_on_twice_at_once() -> None:
    queue = WorkQueue()
    for _ in range(3):
        queue.add("a")
    queue.add("b")
    assert len(queue) == 2
    key = await queue.get()
    assert key == "a"
    queue.add("a")  # an event while it is being worked on: queued for after
    assert len(queue) == 1
    assert await queue.get() == "b"
    queue.done("b")
    queue.done("a")
    assert len(queue) == 1
    assert await queue.get() == "a"


async def test_a_failed_key_comes_back_after_a_backoff() -> None:
    queue = WorkQueue()
    queue.add("a")
    await queue.get()
    queue.done("a", failed=True)
    assert len(queue) == 0
    assert await asyncio.wait_for(queue.get(), timeout=5) == "a"


@pytest.mark.parametrize(
    ("method", "path", "watch", "expected"),
    [
        ("GET", "/apis/batch/v1/namespaces/ns/jobs/j", False, ("get", "jobs")),
        ("GET", "/apis/batch/v1/namespaces/ns/jobs", False, ("list", "jobs")),
        ("GET", "/api/v1/namespaces/ns/pods", True, ("watch", "pods")),
        ("POST", "/api/v1/namespaces/ns/configmaps", False, ("create", "configmaps")),
        (
            "PUT",
            "/apis/reportjobs.io/v1alpha1/namespaces/ns/reportjobs/rj/status",
            False,
            ("update", "reportjobs/status"),
        ),
        ("DELETE", "/apis/batch/v1/namespaces/ns/jobs/j", False, ("delete", "jobs")),
        ("GET", "/api/v1/namespaces", False, ("list", "namespaces")),
    ],
)
def test_requests_are_named_as_the_api_server_counts_them(
    method: str, path: str, watch: bool, expected: tuple[str, str]
) -> None:
    assert verb_and_resource(method, path, watch=watch) == expected


def _obj(name: str, rv: str, uid: str = "u1", **fields: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "uid": uid, "resourceVersion": rv}, **fields}


def test_an_older_version_of_the_same_object_is_recognised() -> None:
    assert is_older(_obj("a", "5"), _obj("a", "7"))
    assert not is_older(_obj("a", "7"), _obj("a", "7"))
    assert not is_older(_obj("a", "5", uid="u2"), _obj("a", "7"))  # a successor
    assert not is_older(_obj("a", "x"), _obj("a", "7"))  # not numbers: never older


def _index() -> tuple[Index, list[str]]:
    woken: list[str] = []
    return Index(
        client=cast(KubeClient, None),
        namespace="ns",
        selector=selector_of(0, shards=16),
        wake=woken.append,
    ), woken


def _job(rv: str, *conditions: str, active: int = 0) -> dict[str, Any]:
    job = _obj("rj-1", rv, labels={"reportjobs.io/reportjob": "rj-1"})
    job["metadata"]["labels"] = {"reportjobs.io/reportjob": "rj-1"}
    job["status"] = {
        "active": active,
        "conditions": [{"type": kind, "status": "True"} for kind in conditions],
    }
    job["spec"] = {"activeDeadlineSeconds": 10, "template": {"spec": {"containers": []}}}
    return job


def test_only_changes_reconcile_looks_at_wake_the_reportjob() -> None:
    index, woken = _index()
    index.jobs.remember(trim_job(_job("1")))
    assert woken == ["rj-1"]
    index.jobs.remember(trim_job(_job("2", active=1)))  # only a count reconcile ignores
    assert woken == ["rj-1"]
    index.jobs.remember(trim_job(_job("3", "Complete")))
    assert woken == ["rj-1", "rj-1"]
    index.jobs.remember(trim_job(_job("2", "Failed")))  # older than what the index has
    assert woken == ["rj-1", "rj-1"]
    assert index.job("rj-1") is not None
    assert "template" not in index.jobs.get("rj-1")["spec"]  # type: ignore[index]


def test_pods_are_indexed_by_their_reportjob() -> None:
    index, woken = _index()
    pod = _obj("p1", "1", labels={"reportjobs.io/reportjob": "rj-1"})
    pod["metadata"]["labels"] = {"reportjobs.io/reportjob": "rj-1"}
    pod["status"] = {"phase": "Pending", "podIP": "10.1.0.5"}
    pod["spec"] = {"nodeName": "n1"}
    index.pods.remember(pod)
    assert [p["metadata"]["name"] for p in index.pods_of("rj-1")] == ["p1"]
    assert index.pods_of("rj-1")[0] == trim_pod(pod)
    assert woken == ["rj-1"]
    index.forget(index.pods_of("rj-1")[0])  # as reconcile does after deleting it with grace 0
    assert index.pods_of("rj-1") == []
    assert woken == ["rj-1", "rj-1"]
