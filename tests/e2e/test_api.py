"""The HTTP API: create, dedup answer, read, list, OpenAPI, and clear 4xx for bad input."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.e2e.conftest import DeployRelease
from tests.e2e.support.gateway import Gateway
from tests.e2e.support.polling import wait_until
from tests.e2e.support.release import Release

# The module's tests share one release: pytest-xdist (--dist loadgroup) keeps them on one worker.
pytestmark = pytest.mark.xdist_group("test_api")


JOB_FIELDS = {
    "job_id",
    "object_id",
    "status",
    "sleep_seconds",
    "timeout_seconds",
    "attempts",
    "created_at",
    "started_at",
    "finished_at",
    "message",
    "callback_url",
    "notification",
}


@pytest.fixture(scope="module")
def release(deploy_module_release: DeployRelease) -> Release:
    """One release for the module: each test submits only its own object ids."""
    return deploy_module_release(dedup={"windowSeconds": 10})


def test_post_put_get_and_location(release: Release) -> None:
    gateway = release.gateway
    created = gateway.submit("api-object")
    assert created.status == 201, created.body
    job_id = created.body["job_id"]
    assert set(created.body) == JOB_FIELDS
    assert created.headers["location"].endswith(f"/jobs/{job_id}")
    assert created.body["status"] == "Pending"
    assert created.body["timeout_seconds"] == 60
    assert created.body["created_at"].endswith("Z")

    again = gateway.submit("api-object", method="PUT")
    assert again.status == 200, again.body
    assert again.body["job_id"] == job_id
    assert again.headers["location"].endswith(f"/jobs/{job_id}")

    read = gateway.job(job_id)
    assert read.status == 200
    assert read.body["object_id"] == "api-object"

    missing = gateway.job("rj-does-not-exist-1")
    assert missing.status == 404
    assert "detail" in missing.body


BAD_INPUTS: list[tuple[object, bytes | None]] = [
    ({}, None),
    ({"object_id": ""}, None),
    ({"object_id": "x" * 257}, None),
    ({"object_id": 5}, None),
    ({"object_id": None}, None),
    ({"object_id": ["a"]}, None),
    ({"object_id": "a", "colour": "red"}, None),
    ({"object_id": "a", "timeout_seconds": 0}, None),
    ({"object_id": "a", "timeout_seconds": 61}, None),
    ({"object_id": "a", "timeout_seconds": "soon"}, None),
    (None, b'{"object_id": "a"'),
    (None, b"[1, 2]"),
    (None, b"\xff\xfe"),
    (None, b'{"object_id": "\xff"}'),  # not UTF-8: was FastAPI's 400
]


def test_bad_input_gets_a_clear_422(release: Release) -> None:
    def names() -> set[str]:
        return {rj["metadata"]["name"] for rj in release.cluster.reportjobs(release.namespace)}

    before = names()  # the module's other tests share the release
    wrong = []
    for body, raw in BAD_INPUTS:
        for method in ("POST", "PUT"):
            answer = release.gateway.request(method, "/jobs", body=body, raw=raw)
            detail = answer.body.get("detail") if isinstance(answer.body, dict) else None
            if answer.status != 422 or not detail:
                wrong.append((method, body, raw, answer.status, answer.body))
    assert not wrong, wrong
    # Nothing was created by any of them.
    assert names() - before == set()


def test_unicode_and_boundary_lengths_are_accepted(release: Release) -> None:
    gateway = release.gateway
    for object_id in ["отчёт 📄 №7", "x" * 256, "é" * 256, " spaced / slashes?&="]:
        answer = gateway.submit(object_id)
        assert answer.status == 201, (object_id, answer.body)
        assert answer.body["object_id"] == object_id
        listed = gateway.request("GET", f"/jobs?object_id={quote(object_id, safe='')}")
        assert listed.status == 200
        assert [item["job_id"] for item in listed.body["items"]] == [answer.body["job_id"]]


def test_list_by_object_is_newest_first(release: Release) -> None:
    gateway = release.gateway
    first = gateway.submit("listed-object")
    assert first.status == 201
    # The 10 s window must pass before the same object gets a second job; poll for it.
    second = wait_until(
        lambda: (a := gateway.submit("listed-object")).status == 201 and a,
        timeout=60,
        interval=1,
        what="a second job after the window",
    )
    listed = gateway.request("GET", "/jobs?object_id=listed-object")
    assert listed.status == 200
    ids = [item["job_id"] for item in listed.body["items"]]
    assert ids == [second.body["job_id"], first.body["job_id"]]
    empty = gateway.request("GET", "/jobs?object_id=never-submitted")
    assert empty.status == 200
    assert empty.body["items"] == []


def test_openapi_and_health(release: Release) -> None:
    gateway: Gateway = release.gateway
    spec = gateway.request("GET", "/openapi.json")
    assert spec.status == 200
    assert {"/jobs", "/jobs/{job_id}"} <= set(spec.body["paths"])
    assert gateway.request("GET", "/docs").status == 200
    assert gateway.request("GET", "/healthz").status == 200
    assert gateway.request("GET", "/readyz").status == 200
