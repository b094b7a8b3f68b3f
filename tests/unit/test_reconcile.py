"""The reconcile steps against a fake Kubernetes API."""

import asyncio
from datetime import UTC, datetime
from typing import Any

from reportjobs_operator.reconcile import Policy, Reconciler
from tests.unit.fakes import WORKER, FakeOperatorApi, reportjob, stamp

W = 300
B = 5_666_666
NOW = datetime.fromtimestamp(B * W + 100, UTC)
NAME = "rj-a-1"

POLICY = Policy(
    sleep_min_seconds=15,
    sleep_max_seconds=40,
    retention_seconds=3600,
    worker=WORKER,
)


class Draws:
    def __init__(self, value: int) -> None:
        self.value = value
        self.calls: list[tuple[int, int]] = []

    def __call__(self, low: int, high: int) -> int:
        self.calls.append((low, high))
        return self.value


def _setup(
    created: float = B * W + 50, **rj: Any
) -> tuple[FakeOperatorApi, Reconciler, Draws, dict[str, Any]]:
    api = FakeOperatorApi()
    draws = Draws(23)
    created = api.add_reportjob(reportjob(name=NAME, created=created, window=W, **rj))
    reconciler = Reconciler(api=api, policy=POLICY, draw=draws, clock=lambda: NOW)
    return api, reconciler, draws, created


async def _reconcile(reconciler: Reconciler) -> None:
    await reconciler.reconcile(namespace="ns", name=NAME)


def _pod(job: dict[str, Any], name: str, phase: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": {"reportjobs.io/reportjob": NAME},
            "ownerReferences": [{"uid": job["metadata"]["uid"], "controller": True}],
        },
        "status": {"phase": phase},
    }


def _complete(api: FakeOperatorApi) -> None:
    api.jobs[NAME]["status"] = {
        "conditions": [
            {"type": "Complete", "status": "True", "lastTransitionTime": stamp(B * W + 90)}
        ]
    }


async def test_sleep_is_drawn_and_persisted_before_the_job_is_created() -> None:
    api, reconciler, draws, _ = _setup()
    await _reconcile(reconciler)
    assert draws.calls == [(15, 40)]
    assert api.calls.index(f"replace_status {NAME}") < api.calls.index(f"create_job {NAME}")
    job = api.jobs[NAME]
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "23"
    status = api.reportjobs[NAME]["status"]
    assert status["sleepSeconds"] == 23
    assert status["phase"] == "Pending"
    assert status["jobName"] == NAME


async def test_the_sleep_is_never_redrawn() -> None:
    api, reconciler, draws, _ = _setup()
    await _reconcile(reconciler)
    del api.jobs[NAME]  # e.g. deleted by hand
    await _reconcile(reconciler)
    assert len(draws.calls) == 1
    assert api.jobs[NAME]["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "23"


async def test_concurrent_reconciles_are_serialized() -> None:
    api, reconciler, draws, _ = _setup()
    await asyncio.gather(*(_reconcile(reconciler) for _ in range(5)))
    assert len(draws.calls) == 1
    assert api.calls.count(f"create_job {NAME}") == 1


async def test_gone_or_deleting_reportjobs_are_left_alone() -> None:
    api, reconciler, draws, _ = _setup()
    api.reportjobs[NAME]["metadata"]["deletionTimestamp"] = stamp(B * W + 99)
    await _reconcile(reconciler)
    await reconciler.reconcile(namespace="ns", name="rj-unknown-1")
    assert draws.calls == []
    assert api.jobs == {}


async def test_an_existing_job_of_ours_is_adopted() -> None:
    api, reconciler, _, rj = _setup(status={"sleepSeconds": 23, "phase": "Pending"})
    original_get = api.get_job
    calls = 0

    async def racing_get_job(*, namespace: str, name: str) -> dict[str, Any] | None:
        nonlocal calls
        calls += 1
        if calls == 1:  # the Job appears between our read and our create
            api.add_job({"metadata": {"name": NAME, "ownerReferences": [_owner(rj)]}})
            return None
        return await original_get(namespace=namespace, name=name)

    api.get_job = racing_get_job  # type: ignore[method-assign]
    await _reconcile(reconciler)
    assert f"create_job {NAME}" in api.calls
    assert f"delete_job {NAME}" not in api.calls
    assert NAME in api.jobs
    assert api.reportjobs[NAME]["status"]["jobName"] == NAME


def _owner(rj: dict[str, Any]) -> dict[str, Any]:
    return {"uid": rj["metadata"]["uid"], "controller": True, "kind": "ReportJob", "name": NAME}


async def test_a_job_of_an_earlier_owner_is_deleted() -> None:
    api, reconciler, _, rj = _setup(status={"sleepSeconds": 23, "phase": "Pending"})
    foreign = [{"uid": "old", "controller": True}]
    api.add_job({"metadata": {"name": NAME, "ownerReferences": foreign}})
    await _reconcile(reconciler)
    assert api.calls.index(f"delete_job {NAME}") < api.calls.index(f"create_job {NAME}")
    assert api.jobs[NAME]["metadata"]["ownerReferences"][0]["uid"] == rj["metadata"]["uid"]


async def test_running_pods_make_it_running() -> None:
    api, reconciler, _, _ = _setup()
    await _reconcile(reconciler)
    job = api.jobs[NAME]
    api.pods = [
        _pod(job, f"{NAME}-x", "Running"),
        _pod({"metadata": {"uid": "other"}}, "y", "Running"),
    ]
    await _reconcile(reconciler)
    status = api.reportjobs[NAME]["status"]
    assert status["phase"] == "Running"
    assert status["pods"] == [f"{NAME}-x"]  # pods of another Job are not ours


async def test_terminal_status_is_written_then_the_job_deleted() -> None:
    api, reconciler, _, _ = _setup()
    await _reconcile(reconciler)
    _complete(api)
    await _reconcile(reconciler)
    assert api.reportjobs[NAME]["status"]["phase"] == "Succeeded"
    assert api.jobs == {}
    last_write = max(i for i, c in enumerate(api.calls) if c.startswith("replace_status"))
    assert last_write < api.calls.index(f"delete_job {NAME}")
    await _reconcile(reconciler)  # nothing left to do, nothing recreated
    assert api.jobs == {}
    assert api.reportjobs[NAME]["status"]["phase"] == "Succeeded"


async def test_expired_reportjobs_are_deleted() -> None:
    api, reconciler, _, _ = _setup(
        created=B * W - 4000,
        status={"sleepSeconds": 2, "phase": "Succeeded", "finishedAt": stamp(B * W - 3601)},
    )
    await _reconcile(reconciler)
    assert api.reportjobs == {}


async def test_kept_while_its_dedup_window_is_open_even_past_retention() -> None:
    """A submission inside the window re-creates a missing job: it must not go before."""
    api, reconciler, _, _ = _setup(
        created=B * W + 100 - W + 1,
        status={"sleepSeconds": 2, "phase": "Succeeded", "finishedAt": stamp(B * W - 3601)},
    )
    await _reconcile(reconciler)
    assert NAME in api.reportjobs


async def test_retained_until_the_retention_is_over() -> None:
    api, reconciler, _, _ = _setup(
        status={"sleepSeconds": 2, "phase": "Succeeded", "finishedAt": stamp(B * W + 100 - 3600)}
    )
    await _reconcile(reconciler)
    assert NAME in api.reportjobs


async def test_status_write_conflicts_are_retried() -> None:
    api, reconciler, draws, _ = _setup()
    api.status_conflicts = 2
    await _reconcile(reconciler)
    assert api.reportjobs[NAME]["status"]["sleepSeconds"] == 23
    assert NAME in api.jobs
    assert len(draws.calls) == 3  # nothing was persisted by the failed writes
