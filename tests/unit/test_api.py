"""The HTTP API with a fake store in place of the Kubernetes API."""

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from reportjobs_gateway.deps import get_cache, get_store
from reportjobs_gateway.main import create_app
from reportjobs_gateway.ports import JobStore
from reportjobs_gateway.settings import GatewaySettings
from reportjobs_gateway.submission import submit
from reportjobs_model.naming import job_name, object_hash
from tests.unit.fakes import DownStore, FakeStore, reportjob
from tests.unit.test_cached_submission import Cache, Local, _clock

W = 300
NOW = 1_700_000_000 + 0.4


def _app(store: JobStore) -> FastAPI:
    settings = GatewaySettings(
        namespace="test",
        pod_name="gateway-0",
        window_seconds=W,
        default_timeout_seconds=30,
        max_timeout_seconds=120,
        cache=False,
    )
    app = create_app(settings)
    app.dependency_overrides[get_store] = lambda: store
    return app


@pytest.fixture
def store() -> FakeStore:
    return FakeStore(now=NOW)


@pytest.fixture
def client(store: FakeStore) -> Iterator[TestClient]:
    with TestClient(_app(store)) as client:
        yield client


def _problems(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    detail: list[dict[str, Any]] = response.json()["detail"]
    assert detail
    assert all({"loc", "msg", "type"} <= set(issue) for issue in detail)
    return detail


def test_post_creates_a_job(client: TestClient) -> None:
    response = client.post("/jobs", json={"object_id": "invoice-42"})
    assert response.status_code == 201, response.text
    body = response.json()
    expected_id = job_name(object_id="invoice-42", accepted_at=int(NOW))
    assert response.headers["location"] == f"/jobs/{expected_id}"
    assert response.headers["x-served-by"] == "gateway-0"
    assert body == {
        "job_id": expected_id,
        "object_id": "invoice-42",
        "status": "Pending",
        "sleep_seconds": None,
        "timeout_seconds": 30,
        "attempts": 0,
        "created_at": "2023-11-14T22:13:20Z",
        "started_at": None,
        "finished_at": None,
        "message": None,
        "callback_url": None,
        "notification": None,
    }


def test_put_deduplicates_with_200(client: TestClient) -> None:
    first = client.post("/jobs", json={"object_id": "invoice-42", "timeout_seconds": 5})
    second = client.put("/jobs", json={"object_id": "invoice-42", "timeout_seconds": 120})
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"]
    assert second.json()["timeout_seconds"] == 5


def test_get_returns_the_job_with_its_status(client: TestClient, store: FakeStore) -> None:
    job_id = client.post("/jobs", json={"object_id": "x"}).json()["job_id"]
    store.objects[job_id]["status"] = {
        "phase": "Succeeded",
        "sleepSeconds": 21,
        "attempts": 2,
        "startedAt": "2023-11-14T22:11:45+00:00",
        "finishedAt": "2023-11-14T22:12:06Z",
        "message": "Succeeded: the worker slept 21 seconds",
    }
    response = client.get(f"/jobs/{job_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "Succeeded"
    assert (body["sleep_seconds"], body["attempts"]) == (21, 2)
    assert body["started_at"] == "2023-11-14T22:11:45Z"
    assert body["finished_at"] == "2023-11-14T22:12:06Z"
    assert body["message"] == "Succeeded: the worker slept 21 seconds"


@pytest.mark.parametrize(
    "job_id",
    [job_name(object_id="never", accepted_at=int(NOW)), "nope", "rj-zz-1", "..%2F..%2Fsecrets"],
)
def test_unknown_job_is_404_json(client: TestClient, job_id: str) -> None:
    response = client.get(f"/jobs/{job_id}")
    assert response.status_code == 404
    assert "not found" in response.json()["detail"].lower()
    assert response.headers["x-served-by"] == "gateway-0"


def test_list_is_newest_first_and_skips_foreign(client: TestClient, store: FakeStore) -> None:
    labels = {"reportjobs.io/object-hash": object_hash("x")}
    older = reportjob(name=job_name(object_id="x", accepted_at=1), object_id="x", created=NOW - 900)
    old = reportjob(name=job_name(object_id="x", accepted_at=2), object_id="x", created=NOW - 600)
    collision = reportjob(name="rj-other", object_id="y", created=NOW - 300)
    for obj in (old, collision, older):
        obj["metadata"]["labels"].update(labels)
        store.objects[obj["metadata"]["name"]] = obj
    newest = client.post("/jobs", json={"object_id": "x"}).json()
    response = client.get("/jobs", params={"object_id": "x"})
    assert response.status_code == 200
    assert [job["job_id"] for job in response.json()["items"]] == [
        newest["job_id"],
        old["metadata"]["name"],
        older["metadata"]["name"],
    ]


def test_list_of_an_unknown_object_is_empty(client: TestClient) -> None:
    response = client.get("/jobs", params={"object_id": "nothing"})
    assert response.status_code == 200
    assert response.json() == {"items": []}


@pytest.mark.parametrize(
    "object_id", ["報告-📄-ü", "📄" * 256, "a" * 256, " ", "with\nnewline", "\u0000"]
)
def test_any_unicode_up_to_256_characters_is_accepted(client: TestClient, object_id: str) -> None:
    response = client.post("/jobs", json={"object_id": object_id})
    assert response.status_code == 201, response.text
    assert response.json()["object_id"] == object_id
    listed = client.get("/jobs", params={"object_id": object_id}).json()["items"]
    assert [job["object_id"] for job in listed] == [object_id]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"object_id": "a" * 257}, "object_id", "at most 256 characters"),
        ({"object_id": "📄" * 257}, "object_id", "at most 256 characters"),
        ({"object_id": ""}, "object_id", "at least 1 character"),
        ({}, "object_id", "Field required"),
        ({"object_id": 42}, "object_id", "valid string"),
        ({"object_id": None}, "object_id", "valid string"),
        ({"object_id": ["a"]}, "object_id", "valid string"),
        ({"object_id": "x", "timeout_seconds": 0}, "timeout_seconds", "greater than or equal"),
        ({"object_id": "x", "timeout_seconds": 121}, "timeout_seconds", "less than or equal"),
        ({"object_id": "x", "timeout_seconds": "5"}, "timeout_seconds", "valid integer"),
        ({"object_id": "x", "timeout_seconds": 5.5}, "timeout_seconds", "valid integer"),
        ({"object_id": "x", "timeout_seconds": True}, "timeout_seconds", "valid integer"),
        ({"object_id": "x", "priority": 1}, "priority", "Extra inputs are not permitted"),
    ],
)
def test_invalid_submissions_are_422(
    client: TestClient, store: FakeStore, body: dict[str, Any], field: str, words: str
) -> None:
    for method in ("POST", "PUT"):
        (problem,) = _problems(client.request(method, "/jobs", json=body))
        assert problem["loc"] == ["body", field]
        assert words in problem["msg"]
    assert store.objects == {}


@pytest.mark.parametrize(
    ("content", "content_type", "words"),
    [
        (b'{"object_id": ', "application/json", "Malformed JSON"),
        (b"object_id=x", "application/x-www-form-urlencoded", "must be a JSON object"),
        (b'["x"]', "application/json", "must be a JSON object"),
        (b'"x"', "application/json", "must be a JSON object"),
        (b'{"object_id": "\\ud800"}', "application/json", "unicode"),
    ],
)
def test_malformed_bodies_are_422(
    client: TestClient, content: bytes, content_type: str, words: str
) -> None:
    response = client.post("/jobs", content=content, headers={"content-type": content_type})
    (problem,) = _problems(response)
    assert words.lower() in problem["msg"].lower()


def test_a_body_without_content_type_is_read_as_json(client: TestClient) -> None:
    response = client.post("/jobs", content=b'{"object_id": "no-header"}')
    assert response.status_code == 201


def test_list_needs_a_valid_object_id(client: TestClient) -> None:
    assert _problems(client.get("/jobs"))[0]["loc"] == ["query", "object_id"]
    assert (
        "at most 256" in _problems(client.get("/jobs", params={"object_id": "a" * 257}))[0]["msg"]
    )


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/jobs", {"object_id": "x"}),
        ("PUT", "/jobs", {"object_id": "x"}),
        ("GET", f"/jobs/{job_name(object_id='x', accepted_at=1)}", None),
        ("GET", "/jobs?object_id=x", None),
        ("GET", "/readyz", None),
    ],
)
def test_kubernetes_unreachable_is_503_json(method: str, path: str, body: Any) -> None:
    with TestClient(_app(DownStore())) as client:
        response = client.request(method, path, json=body)
    assert response.status_code == 503
    assert "Kubernetes API" in response.json()["detail"]
    assert response.headers["x-served-by"] == "gateway-0"


def test_an_unexpected_error_is_500_json_without_a_trace() -> None:
    app = _app(DownStore(RuntimeError("secret internals")))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/jobs", json={"object_id": "x"})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error"}
    assert "secret" not in response.text
    assert response.headers["x-served-by"] == "gateway-0"


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


def test_openapi_and_docs(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert {"post", "put", "get"} <= set(schema["paths"]["/jobs"])
    assert "/jobs/{job_id}" in schema["paths"]
    submission = schema["components"]["schemas"]["JobSubmission"]
    assert submission["additionalProperties"] is False
    assert client.get("/docs").status_code == 200


def _timeout_schema(client: TestClient) -> dict[str, Any]:
    schema = client.get("/openapi.json").json()
    timeout: dict[str, Any] = schema["components"]["schemas"]["JobSubmission"]["properties"][
        "timeout_seconds"
    ]
    (integer,) = [variant for variant in timeout["anyOf"] if variant.get("type") == "integer"]
    return integer


def test_openapi_bounds_timeout_by_the_configured_maximum(client: TestClient) -> None:
    assert _timeout_schema(client) == {"type": "integer", "minimum": 1, "maximum": 120}
    # The schema's bound is the one the route enforces: the maximum passes, one more does not.
    assert client.post("/jobs", json={"object_id": "a", "timeout_seconds": 120}).status_code == 201
    (issue,) = _problems(client.post("/jobs", json={"object_id": "b", "timeout_seconds": 121}))
    assert issue == {
        "loc": ["body", "timeout_seconds"],
        "msg": "Input should be less than or equal to 120",
        "type": "less_than_equal",
    }


def test_openapi_maximum_follows_each_apps_settings(store: FakeStore) -> None:
    settings = GatewaySettings(
        namespace="test", pod_name="g", default_timeout_seconds=5, max_timeout_seconds=7
    )
    app = create_app(settings)
    app.dependency_overrides[get_store] = lambda: store
    with TestClient(app) as other:
        assert _timeout_schema(other)["maximum"] == 7


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/jobs", "GET, POST, PUT"),
        ("PATCH", "/jobs", "GET, POST, PUT"),
        ("POST", "/jobs/rj-abc-1", "DELETE, GET"),
        ("PUT", "/healthz", "GET"),
    ],
)
def test_405_allows_every_method_the_path_serves(
    client: TestClient, method: str, path: str, allowed: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.json() == {"detail": "Method Not Allowed"}
    assert response.headers["x-served-by"] == "gateway-0"
    # ... and every method it names is served (not a 405).
    for served in allowed.split(", "):
        assert client.request(served, path, json={"object_id": "x"}).status_code != 405


def test_unknown_path_is_still_404(client: TestClient) -> None:
    response = client.delete("/nowhere")
    assert response.status_code == 404
    assert "allow" not in response.headers


def test_an_integral_json_number_is_an_integer_timeout(client: TestClient) -> None:
    # JSON Schema's "integer" (the OpenAPI document's type) includes 57.0.
    response = client.post("/jobs", json={"object_id": "x", "timeout_seconds": 57.0})
    assert response.status_code == 201, response.text
    assert response.json()["timeout_seconds"] == 57


@pytest.mark.parametrize("body", [b"\x1ch{<\xff\xfe", b'{"object_id": "\xff"}'])
def test_a_body_that_is_not_utf8_is_422_not_400(client: TestClient, body: bytes) -> None:
    response = client.post("/jobs", content=body, headers={"content-type": "application/json"})
    (issue,) = _problems(response)
    assert issue["type"] == "json_invalid"
    assert "not UTF-8" in issue["msg"]


class _NotReady:
    """A cache that has not listed yet."""

    def ready(self) -> bool:
        return False


def test_not_ready_until_the_caches_have_listed(store: FakeStore) -> None:
    app = _app(store)
    app.dependency_overrides[get_cache] = lambda: _NotReady()
    with TestClient(app) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert "caches" in response.json()["detail"]
        # Requests are still served, on the API path.
        assert client.post("/jobs", json={"object_id": "x"}).status_code == 201


def test_a_job_is_read_from_the_cache_and_from_the_api_when_missing(store: FakeStore) -> None:
    local = Local()
    cache = Cache(_clock(local, date=NOW))
    app = _app(store)
    app.dependency_overrides[get_cache] = lambda: cache
    with TestClient(app) as client:
        created = client.post("/jobs", json={"object_id": "invoice-42"}).json()
        store.calls.clear()
        assert client.get(f"/jobs/{created['job_id']}").json() == created  # not cached yet
        assert store.calls == [f"get {created['job_id']}"]
        cache.show(store)
        cache.jobs[created["job_id"]]["status"] = {"phase": "Running", "attempts": 1}
        store.calls.clear()
        cached = client.get(f"/jobs/{created['job_id']}").json()
        assert (cached["status"], store.calls) == ("Running", [])


def test_metrics_count_submissions_by_outcome(client: TestClient) -> None:
    def count(outcome: str) -> float:
        text = client.get("/metrics").text
        line = f'reportjobs_gateway_submissions_total{{outcome="{outcome}"}} '
        return float(next(row for row in text.splitlines() if row.startswith(line)).split()[-1])

    before = {outcome: count(outcome) for outcome in ("created", "deduplicated", "invalid")}
    client.post("/jobs", json={"object_id": "m"})
    client.post("/jobs", json={"object_id": "m"})
    client.post("/jobs", json={"object_id": ""})
    assert count("created") == before["created"] + 1
    assert count("deduplicated") == before["deduplicated"] + 1
    assert count("invalid") == before["invalid"] + 1
    text = client.get("/metrics").text
    assert "reportjobs_gateway_submit_seconds_bucket" in text
    assert 'reportjobs_gateway_submission_paths_total{path="api"}' in text


def test_a_job_answered_before_its_reportjob_exists_is_found_by_its_claim(
    client: TestClient, store: FakeStore
) -> None:
    """A 201 comes once the claim is written; a GET (here, while the gateway's own create has
    not run) finds the claim and creates the same ReportJob."""
    outcome = asyncio.run(submit(store, object_id="early", timeout_seconds=30, window_seconds=W))
    job_id = outcome.job["metadata"]["name"]
    assert outcome.created
    assert job_id not in store.objects
    response = client.get(f"/jobs/{job_id}")
    assert response.status_code == 200, response.text
    assert response.json()["object_id"] == "early"
    assert job_id in store.objects
    assert client.get(f"/jobs/{job_id[:-1]}9").status_code == 404  # no claim names it


def test_the_list_shows_a_job_whose_reportjob_is_still_being_created(
    client: TestClient, store: FakeStore
) -> None:
    outcome = asyncio.run(submit(store, object_id="listed", timeout_seconds=30, window_seconds=W))
    job_id = outcome.job["metadata"]["name"]
    assert job_id not in store.objects
    listed = client.get("/jobs", params={"object_id": "listed"})
    assert listed.status_code == 200, listed.text
    assert [item["job_id"] for item in listed.json()["items"]] == [job_id]
    assert job_id in store.objects  # created from its claim
    again = client.get("/jobs", params={"object_id": "listed"})
    assert [item["job_id"] for item in again.json()["items"]] == [job_id]
