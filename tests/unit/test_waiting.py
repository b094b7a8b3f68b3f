"""?wait and the SSE stream, woken by the cache's watch (changes.py), against fakes."""

import asyncio
import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from reportjobs_gateway.changes import Changes, next_version
from reportjobs_gateway.deps import get_cache, get_store
from reportjobs_gateway.main import create_app
from reportjobs_gateway.settings import GatewaySettings
from reportjobs_model.naming import job_name
from tests.unit.fakes import FakeStore, reportjob
from tests.unit.test_cached_submission import Cache, Local, _clock

NOW = 1_700_000_000 + 0.4
NAME = job_name(object_id="invoice-42", accepted_at=1_700_000_000)


def _setup() -> tuple[FastAPI, FakeStore, Cache]:
    store = FakeStore(now=NOW)
    store.insert(reportjob(name=NAME, created=NOW), created=NOW)
    cache = Cache(_clock(Local(), date=NOW))
    cache.show(store)
    app = create_app(GatewaySettings(namespace="test", pod_name="gateway-0", cache=False))
    app.dependency_overrides[get_store] = lambda: store
    app.dependency_overrides[get_cache] = lambda: cache
    return app, store, cache


def _advance(store: FakeStore, cache: Cache, **status: Any) -> None:
    """The operator writes a status; the watch brings it to the cache."""
    obj = store.objects[NAME]
    obj["status"] = {**obj.get("status", {}), **status}
    obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
    cache.show(store)


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def _waiting(cache: Cache) -> None:
    """Until a request waits for a change of the job (its wake-up registered)."""
    for _ in range(2000):
        if len(cache.changes):
            return
        await asyncio.sleep(0.001)
    raise AssertionError("no request waits")


async def test_a_change_between_the_read_and_the_wait_is_not_lost() -> None:
    changes = Changes()
    jobs: dict[str, dict[str, Any]] = {"a": {"metadata": {"name": "a", "resourceVersion": "1"}}}

    class Watched:
        def job(self, name: str) -> dict[str, Any] | None:
            return jobs.get(name)

        def watching(self, name: str) -> Any:
            return changes.watching(name)

    waiter = asyncio.create_task(next_version(Watched(), name="a", seen="1"))
    await _settle()
    assert not waiter.done()
    assert len(changes) == 1
    jobs["a"] = {"metadata": {"name": "a", "resourceVersion": "2"}}
    changes.changed(None, jobs["a"])
    assert (await asyncio.wait_for(waiter, 1))["metadata"]["resourceVersion"] == "2"
    assert len(changes) == 0  # nothing left registered
    # Already another version: no wait at all.
    found = await asyncio.wait_for(next_version(Watched(), name="a", seen="1"), 1)
    assert found["metadata"]["resourceVersion"] == "2"


async def test_wait_answers_once_the_job_is_terminal() -> None:
    app, store, cache = _setup()
    async with _client(app) as client:
        answer = asyncio.create_task(client.get(f"/jobs/{NAME}", params={"wait": 60}))
        await _waiting(cache)
        _advance(store, cache, phase="Running")
        await _settle()
        await _waiting(cache)
        assert not answer.done()  # Running is not terminal
        _advance(store, cache, phase="Succeeded", finishedAt="2023-11-14T22:14:00Z")
        response = await asyncio.wait_for(answer, 5)
    assert response.status_code == 200
    assert response.json()["status"] == "Succeeded"


async def test_wait_answers_with_the_current_state_after_its_seconds() -> None:
    app, store, cache = _setup()
    async with _client(app) as client:
        answer = asyncio.create_task(client.get(f"/jobs/{NAME}", params={"wait": 1}))
        await _waiting(cache)
        _advance(store, cache, phase="Running")
        response = await asyncio.wait_for(answer, 5)
    assert response.json()["status"] == "Running"


@pytest.mark.parametrize("wait", ["0", "61", "x"])
async def test_wait_out_of_range_is_422(wait: str) -> None:
    app, _, _ = _setup()
    async with _client(app) as client:
        response = await client.get(f"/jobs/{NAME}", params={"wait": wait})
    assert response.status_code == 422, response.text


def _events(body: str) -> list[dict[str, str]]:
    events = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != ":"
        )
        if "data" in fields:
            events.append(fields)
    return events


async def test_events_stream_each_status_change_and_end_after_the_terminal_one() -> None:
    app, store, cache = _setup()
    async with _client(app) as client:
        stream = asyncio.create_task(client.get(f"/jobs/{NAME}/events"))
        await _waiting(cache)
        _advance(store, cache)  # a new version that changes nothing shown: no event
        await _settle()
        await _waiting(cache)
        _advance(store, cache, phase="Running")
        await _settle()
        await _waiting(cache)
        _advance(store, cache, phase="Succeeded", finishedAt="2023-11-14T22:14:00Z")
        response = await asyncio.wait_for(stream, 5)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.text)
    assert [json.loads(e["data"])["status"] for e in events] == ["Pending", "Running", "Succeeded"]
    assert all(e["event"] == "job" for e in events)
    assert [e["id"] for e in events] == ["1", "3", "4"]

    # Resuming from the terminal event: nothing new, the stream ends at once.
    async with _client(app) as client:
        again = await client.get(f"/jobs/{NAME}/events", headers={"Last-Event-ID": "4"})
    assert _events(again.text) == []
    # Resuming from an earlier one: only the current state.
    async with _client(app) as client:
        later = await client.get(f"/jobs/{NAME}/events", headers={"Last-Event-ID": "3"})
    assert [json.loads(e["data"])["status"] for e in _events(later.text)] == ["Succeeded"]


async def test_events_of_an_unknown_job_are_404() -> None:
    app, _, _ = _setup()
    async with _client(app) as client:
        response = await client.get("/jobs/rj-0123456789abcdef01234567-1/events")
        bad = await client.get("/jobs/not-a-job/events")
    assert response.status_code == 404
    assert bad.status_code == 404
