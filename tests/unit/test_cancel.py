"""DELETE /jobs/{id}: the gateway asks through spec.cancel, the operator ends the job Cancelled
and stops its Job (against fakes)."""

import asyncio

import pytest

from reportjobs_gateway import cancellation
from reportjobs_operator.reconcile import Reconciler
from tests.unit.fakes import FakeCache, FakeOperatorApi, reportjob
from tests.unit.test_reconcile import NOW, POLICY, Draws, _owner, _pod
from tests.unit.test_waiting import NAME, _advance, _client, _setup, _waiting


async def test_a_pending_job_is_cancelled_and_a_second_delete_gets_it_again() -> None:
    app, store, cache = _setup()
    async with _client(app) as client:
        answer = asyncio.create_task(client.delete(f"/jobs/{NAME}"))
        await _waiting(cache)  # the patch is written; the request waits for the operator
        assert store.objects[NAME]["spec"]["cancel"] is True
        _advance(store, cache, phase="Cancelled", finishedAt="2023-11-14T22:14:00Z")
        response = await asyncio.wait_for(answer, 5)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "Cancelled"
        calls = list(store.calls)
        again = await client.delete(f"/jobs/{NAME}")
    assert again.status_code == 200
    assert again.json()["status"] == "Cancelled"
    assert [c for c in store.calls if c.startswith("cancel")] == [f"cancel {NAME}"]
    assert store.calls[: len(calls)] == calls


async def test_a_finished_job_is_409_with_its_status() -> None:
    app, store, cache = _setup()
    _advance(store, cache, phase="Succeeded", finishedAt="2023-11-14T22:14:00Z")
    async with _client(app) as client:
        response = await client.delete(f"/jobs/{NAME}")
    assert response.status_code == 409
    assert response.json()["job"]["status"] == "Succeeded"
    assert "Succeeded" in response.json()["detail"]
    assert not any(c.startswith("cancel") for c in store.calls)


async def test_a_job_that_finishes_before_the_cancel_lands_is_409() -> None:
    app, store, cache = _setup()
    async with _client(app) as client:
        answer = asyncio.create_task(client.delete(f"/jobs/{NAME}"))
        await _waiting(cache)
        _advance(store, cache, phase="Succeeded", finishedAt="2023-11-14T22:14:00Z")
        response = await asyncio.wait_for(answer, 5)
    assert response.status_code == 409
    assert response.json()["job"]["status"] == "Succeeded"


async def test_an_operator_that_does_not_answer_in_time_gives_202(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cancellation, "CANCEL_WAIT_SECONDS", 0.2)
    app, store, _ = _setup()
    async with _client(app) as client:
        response = await client.delete(f"/jobs/{NAME}")
    assert response.status_code == 202
    assert response.json()["status"] == "Pending"
    assert store.objects[NAME]["spec"]["cancel"] is True


async def test_unknown_jobs_are_404() -> None:
    app, _, _ = _setup()
    async with _client(app) as client:
        assert (await client.delete("/jobs/rj-0123456789abcdef01234567-1")).status_code == 404
        assert (await client.delete("/jobs/nope")).status_code == 404


def _reconciler(api: FakeOperatorApi, cache: FakeCache) -> Reconciler:
    return Reconciler(
        api=api,
        cache=cache,
        policy=POLICY,
        released=lambda _: True,
        draw=Draws(5),
        clock=lambda: NOW,
    )


async def test_the_operator_cancels_a_pending_job_without_creating_its_job() -> None:
    api = FakeOperatorApi()
    rj = api.add_reportjob(reportjob(name=NAME, created=NOW.timestamp() - 10, window=300))
    rj["spec"]["cancel"] = True
    cache = FakeCache(api)
    await _reconciler(api, cache).reconcile(name=NAME)
    assert api.reportjobs[NAME]["status"]["phase"] == "Cancelled"
    assert "create_job" not in " ".join(api.calls)


async def test_the_operator_cancels_a_running_job_and_stops_its_job() -> None:
    api = FakeOperatorApi()
    rj = api.add_reportjob(reportjob(name=NAME, created=NOW.timestamp() - 10, window=300))
    job = api.add_job({"metadata": {"name": NAME, "ownerReferences": [_owner(rj)]}})
    api.pods = [_pod(job, "p", "Running")]
    rj["spec"]["cancel"] = True
    cache = FakeCache(api)
    await _reconciler(api, cache).reconcile(name=NAME)
    assert api.reportjobs[NAME]["status"]["phase"] == "Cancelled"
    assert api.calls[-1] == f"stop_job {NAME}"
    assert api.jobs[NAME]["spec"]["activeDeadlineSeconds"] == 1


async def test_a_job_that_completed_first_keeps_its_outcome() -> None:
    api = FakeOperatorApi()
    rj = api.add_reportjob(reportjob(name=NAME, created=NOW.timestamp() - 10, window=300))
    job = api.add_job({"metadata": {"name": NAME, "ownerReferences": [_owner(rj)]}})
    job["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    rj["spec"]["cancel"] = True
    cache = FakeCache(api)
    await _reconciler(api, cache).reconcile(name=NAME)
    assert api.reportjobs[NAME]["status"]["phase"] == "Succeeded"
