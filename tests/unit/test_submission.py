"""The dedup protocol against an in-memory store with a controllable server clock."""

import asyncio

import pytest

from reportjobs_gateway.ports import AlreadyExists, Read, ReportJob
from reportjobs_gateway.submission import SubmissionGaveUp, Submitted, submit
from reportjobs_model.naming import job_name, object_hash
from tests.unit.fakes import FakeStore, reportjob

W = 300
B = 5_666_666  # a bucket of late 2023
START = B * W  # first second of bucket B


async def _submit(store: FakeStore, object_id: str = "invoice-42") -> Submitted:
    return await submit(
        store, object_id=object_id, timeout_seconds=60, window_seconds=W, sleep=store.sleep
    )


def _name(bucket: int, object_id: str = "invoice-42") -> str:
    return job_name(object_id=object_id, bucket=bucket)


async def test_new_job_in_the_current_bucket() -> None:
    store = FakeStore(now=START + 50.5)
    outcome = await _submit(store)
    assert outcome.created is True
    job = outcome.job
    assert job["metadata"]["name"] == _name(B)
    assert job["spec"] == {
        "objectId": "invoice-42",
        "timeoutSeconds": 60,
        "windowSeconds": W,
        "bucket": B,
    }
    assert job["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "reportjobs-gateway",
        "reportjobs.io/object-hash": object_hash("invoice-42"),
    }
    assert store.calls == [f"get {_name(B - 1)}", f"create {_name(B)}"]


async def test_same_bucket_is_deduplicated() -> None:
    store = FakeStore(now=START + 50)
    first = await _submit(store)
    store.now += 100
    second = await _submit(store)
    assert second.created is False
    assert second.job["metadata"]["uid"] == first.job["metadata"]["uid"]
    assert len(store.objects) == 1


async def test_dedup_across_the_bucket_boundary_within_the_window() -> None:
    store = FakeStore(now=START + W - 10)
    first = await _submit(store)
    store.now = START + W + 20  # next bucket, 30 s after the first job
    second = await _submit(store)
    assert second.created is False
    assert second.job["metadata"]["name"] == first.job["metadata"]["name"] == _name(B)
    assert len(store.objects) == 1


async def test_new_job_once_the_window_has_passed() -> None:
    store = FakeStore(now=START + 10)
    await _submit(store)
    store.now = START + 10 + W  # created + W == now: no longer within the window
    later = await _submit(store)
    assert later.created is True
    assert later.job["metadata"]["name"] == _name(B + 1)
    assert set(store.objects) == {_name(B), _name(B + 1)}


async def test_dedup_until_the_last_second_of_the_window() -> None:
    store = FakeStore(now=START + 10)
    await _submit(store)
    store.now = START + 10 + W - 1
    assert (await _submit(store)).created is False


async def test_other_objects_are_not_deduplicated() -> None:
    store = FakeStore(now=START + 10)
    a = await _submit(store, "a")
    b = await _submit(store, "b")
    assert a.created
    assert b.created
    assert a.job["metadata"]["name"] != b.job["metadata"]["name"]


async def test_our_late_create_is_deleted_and_retried_in_the_next_bucket() -> None:
    store = FakeStore(now=START + W - 0.5)
    store.create_delays = [1.0]  # the create commits after the bucket ended
    outcome = await _submit(store)
    assert outcome.created is True
    assert outcome.job["metadata"]["name"] == _name(B + 1)
    assert store.deleted == [_name(B)]
    assert set(store.objects) == {_name(B + 1)}
    assert store.sleeps  # waited for the new bucket to settle before reading B again


async def test_a_late_object_met_on_conflict_is_deleted_and_replaced() -> None:
    store = FakeStore(now=START + 100)
    # Another gateway's create into B that committed after B ended.
    stale = store.insert(reportjob(name=_name(B), bucket=B), created=START + W + 5)
    outcome = await _submit(store)
    assert outcome.created is True
    assert outcome.job["metadata"]["name"] == _name(B)
    assert outcome.job["metadata"]["uid"] != stale["metadata"]["uid"]
    assert store.deleted == [_name(B)]


async def test_a_late_object_in_the_previous_bucket_is_not_an_answer() -> None:
    store = FakeStore(now=START + 100)
    late = reportjob(name=_name(B - 1), bucket=B - 1, created=START + 1)
    store.objects[_name(B - 1)] = late
    outcome = await _submit(store)
    assert outcome.created is True
    assert outcome.job["metadata"]["name"] == _name(B)


async def test_waits_until_the_bucket_has_settled() -> None:
    store = FakeStore(now=START + 0.5)
    outcome = await _submit(store)
    assert store.sleeps == [2.0]
    assert outcome.job["metadata"]["name"] == _name(B)


async def test_a_wrong_clock_hint_is_corrected_by_the_server_time() -> None:
    store = FakeStore(now=START + 100, hint_offset=-3 * W)
    outcome = await _submit(store)
    assert outcome.job["metadata"]["name"] == _name(B)
    assert store.calls[0] == f"get {_name(B - 4)}"
    assert store.calls[1:] == [f"get {_name(B - 1)}", f"create {_name(B)}"]


async def test_concurrent_submissions_give_one_job() -> None:
    store = FakeStore(now=START + 100)
    outcomes = await asyncio.gather(*(_submit(store) for _ in range(20)))
    assert len(store.objects) == 1
    assert sum(o.created for o in outcomes) == 1
    assert {o.job["metadata"]["uid"] for o in outcomes} == {
        store.objects[_name(B)]["metadata"]["uid"]
    }


async def test_concurrent_submissions_of_many_objects() -> None:
    store = FakeStore(now=START + 100)
    ids = [f"object-{i % 5}" for i in range(25)]
    outcomes = await asyncio.gather(*(_submit(store, object_id) for object_id in ids))
    assert len(store.objects) == 5
    assert sum(o.created for o in outcomes) == 5


class _Vanishing(FakeStore):
    """Every create conflicts, and the conflicting object is never there."""

    async def create(self, body: ReportJob) -> Read:
        raise AlreadyExists(body["metadata"]["name"])


async def test_gives_up_after_bounded_rounds() -> None:
    store = _Vanishing(now=START + 100)
    with pytest.raises(SubmissionGaveUp):
        await submit(store, object_id="x", timeout_seconds=60, window_seconds=W, sleep=store.sleep)
