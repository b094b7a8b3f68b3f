"""The dedup protocol against an in-memory store with a controllable server clock."""

import asyncio

import pytest

from reportjobs_gateway.ports import Stale
from reportjobs_gateway.submission import (
    EarlierJobNotAccepted,
    SubmissionGaveUp,
    Submitted,
    create_job,
    submit,
)
from reportjobs_model.naming import job_name, object_hash
from reportjobs_model.shards import bucket_of
from reportjobs_model.window import EPOCH_KEY, FIRST_EPOCH, claim_of, entry_key, shard_name
from tests.unit.fakes import FakeStore

W = 300
T0 = 1_700_000_000  # a server time of late 2023
SHARD = shard_name("invoice-42")
KEY = entry_key("invoice-42")


async def _submit(
    store: FakeStore, object_id: str = "invoice-42", timeout_s: int = 60, *, create: bool = True
) -> Submitted:
    """A submission, then (`create`) what the gateway does after a 201: create its job."""
    outcome = await submit(store, object_id=object_id, timeout_seconds=timeout_s, window_seconds=W)
    if create and outcome.to_create is not None:
        await create_job(store, outcome.to_create)
    return outcome


async def test_a_new_object_is_answered_after_two_requests_and_created_after() -> None:
    store = FakeStore(now=T0 + 0.7)
    outcome = await _submit(store, create=False)
    assert store.calls == [f"get_window {SHARD}", f"create_window {SHARD}"]
    assert store.objects == {}
    assert outcome.to_create == outcome.job
    await create_job(store, outcome.job)
    assert outcome.created is True
    job = outcome.job
    assert job["metadata"]["name"] == job_name(object_id="invoice-42", accepted_at=T0)
    assert job["spec"] == {
        "objectId": "invoice-42",
        "timeoutSeconds": 60,
        "windowSeconds": W,
        "acceptedAt": "2023-11-14T22:13:20Z",
    }
    assert job["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "reportjobs-gateway",
        "reportjobs.io/object-hash": object_hash("invoice-42"),
        "reportjobs.io/bucket": str(bucket_of(job["metadata"]["name"])),
    }
    assert store.calls[-1] == f"create {job['metadata']['name']}"
    shard = store.windows[SHARD]
    assert f"reportjobs-windows-{object_hash('invoice-42')[:2]}" == SHARD
    assert shard["data"] == {
        KEY: '{{"job":"{}","acceptedAt":"2023-11-14T22:13:20Z","windowSeconds":300,'
        '"timeoutSeconds":60,"objectId":"invoice-42"}}'.format(job["metadata"]["name"]),
        EPOCH_KEY: FIRST_EPOCH,  # created with its first epoch
    }
    assert shard["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "reportjobs-gateway",
        "app.kubernetes.io/component": "dedup-windows",
    }


async def test_a_deduplicated_answer_costs_two_requests() -> None:
    store = FakeStore(now=T0)
    first = await _submit(store)
    store.now += W - 1
    store.calls.clear()
    second = await _submit(store, timeout_s=5)
    assert second.created is False
    assert second.job == store.objects[first.job["metadata"]["name"]]
    assert store.calls == [f"get_window {SHARD}", f"get {first.job['metadata']['name']}"]


async def test_the_window_slides_from_the_accepted_time() -> None:
    store = FakeStore(now=T0 + 299.9)  # no buckets: any time works alike
    first = await _submit(store)
    store.now = T0 + 299 + W - 0.1
    assert (await _submit(store)).job["metadata"]["name"] == first.job["metadata"]["name"]
    store.now = T0 + 299 + W
    third = await _submit(store)
    assert third.created is True
    assert third.job["spec"]["acceptedAt"] == "2023-11-14T22:23:19Z"
    assert len(store.objects) == 2
    assert store.calls[-4:] == [
        f"get_window {SHARD}",
        f"get {first.job['metadata']['name']}",  # the closed claim's job exists: replace it
        f"patch_window {SHARD}",
        f"create {third.job['metadata']['name']}",
    ]


async def test_a_closed_claim_without_its_job_gets_it_before_a_new_claim_replaces_it() -> None:
    """The winner died between its 201 and the create, and nobody asked within the window:
    the claim is still the accepted job, so the next claim of the object creates it first."""
    store = FakeStore(now=T0)
    first = await _submit(store, create=False)
    store.now += W
    second = await _submit(store)
    assert second.created is True
    assert set(store.objects) == {first.job["metadata"]["name"], second.job["metadata"]["name"]}


async def test_the_window_of_the_record_applies_not_the_current_setting() -> None:
    store = FakeStore(now=T0)
    await submit(store, object_id="x", timeout_seconds=60, window_seconds=10)
    store.now += 10
    later = await submit(store, object_id="x", timeout_seconds=60, window_seconds=W)
    assert later.created is True


async def test_other_objects_are_independent() -> None:
    store = FakeStore(now=T0)
    a = await _submit(store, "a")
    b = await _submit(store, "b")
    assert a.created
    assert b.created
    assert len(store.objects) == 2


async def test_a_claim_whose_job_was_never_created_is_completed_by_the_next_submission() -> None:
    """The winner crashed between its 201 and the create: the job is created from the claim."""
    store = FakeStore(now=T0)
    await _submit(store, timeout_s=17, create=False)
    name = store.claims[0]
    assert name not in store.objects
    store.now += 30
    again = await _submit(store, timeout_s=60)
    assert again.created is False
    assert again.job["metadata"]["name"] == name
    assert again.job["spec"]["timeoutSeconds"] == 17  # the claim's, not this request's
    assert again.job["spec"]["acceptedAt"] == "2023-11-14T22:13:20Z"


async def test_losers_of_a_claim_write_are_answered_with_the_winners_job() -> None:
    store = FakeStore(now=T0)
    first = await _submit(store)
    store.now += W
    outcomes = await asyncio.gather(*(_submit(store) for _ in range(10)))
    assert [o.created for o in outcomes].count(True) == 1
    assert len({o.job["metadata"]["name"] for o in outcomes}) == 1
    assert outcomes[0].job["metadata"]["name"] != first.job["metadata"]["name"]
    assert store.calls.count(f"patch_window {SHARD}") == 10  # one won, nine tested stale
    assert len(store.objects) == 2


async def test_a_claim_leaves_the_closed_claims_of_other_objects_to_the_sweep() -> None:
    """A claim writes its own object's entry only (a removal would move the shard's epoch on,
    and make the concurrent claims of other objects lose): the operator's sweep prunes."""
    store = FakeStore(now=T0)
    others = [f"other-{i}" for i in range(400)]
    same_shard = [o for o in others if shard_name(o) == SHARD][:2]
    assert same_shard, "some of 400 ids share the shard"
    await _submit(store, same_shard[0])
    store.now += W
    await _submit(store)
    data = store.windows[SHARD]["data"]
    assert set(data) == {KEY, entry_key(same_shard[0]), EPOCH_KEY}


async def test_an_unreadable_claim_counts_as_absent() -> None:
    store = FakeStore(now=T0)
    await _submit(store)
    store.windows[SHARD]["data"][KEY] = "not json"
    store.now += 1
    again = await _submit(store)
    assert again.created is True
    claim = claim_of(store.windows[SHARD]["data"][KEY])
    assert claim is not None
    assert claim.job_name == again.job["metadata"]["name"]


async def test_concurrent_submissions_give_one_job_and_one_201() -> None:
    store = FakeStore(now=T0 + 0.5)
    outcomes = await asyncio.gather(*(_submit(store) for _ in range(50)))
    assert len(store.objects) == 1
    assert [o.created for o in outcomes].count(True) == 1
    assert {o.job["metadata"]["name"] for o in outcomes} == set(store.objects)


async def test_concurrent_submissions_of_many_objects() -> None:
    store = FakeStore(now=T0)
    ids = [f"object-{i % 7}" for i in range(70)]
    outcomes = await asyncio.gather(*(_submit(store, object_id) for object_id in ids))
    assert len(store.objects) == 7
    assert sum(o.created for o in outcomes) == 7
    for object_id, outcome in zip(ids, outcomes, strict=True):
        assert outcome.job["spec"]["objectId"] == object_id


async def test_gives_up_after_bounded_rounds() -> None:
    class AlwaysLosing(FakeStore):
        async def patch_window(
            self, name: str, patch: list[dict[str, object]], *, based_on: str
        ) -> dict[str, object]:
            self.calls.append("patch_window")
            raise Stale("lost")

    store = AlwaysLosing(now=T0)
    await _submit(store)
    store.now += W
    with pytest.raises(SubmissionGaveUp):
        await submit(
            store, object_id="invoice-42", timeout_seconds=60, window_seconds=W, max_rounds=3
        )
    assert store.calls.count("patch_window") == 3


async def test_a_closed_claim_whose_job_is_not_accepted_yet_is_not_replaced() -> None:
    """Its operator has not checked yet that the claim names the job: replacing the claim now
    would make the job look created again after a deletion. 503 until it is accepted."""
    store = FakeStore(now=T0 + 0.2, accepts=False)
    first = await _submit(store)
    store.now += W + 1
    with pytest.raises(EarlierJobNotAccepted, match="not accepted by the operator yet"):
        await _submit(store)
    assert claim_of(store.windows[SHARD]["data"][KEY]).job_name == first.job["metadata"]["name"]
    store.objects[first.job["metadata"]["name"]]["status"] = {"phase": "Running"}
    again = await _submit(store)
    assert again.created
    assert again.job["metadata"]["name"] != first.job["metadata"]["name"]


async def test_a_claim_holding_characters_go_escapes_is_claimed_again_after_its_window() -> None:
    """`&`, `<`, `>`, non-ASCII: the entry is written so that the API server's test of it
    matches (the fake compares bytes as the server does)."""
    object_id, callback = "a&b<c>é😀\x01\x7f", "https://example.com/h?a=1&b=<2>"
    store = FakeStore(now=T0 + 0.2)
    first = await submit(
        store, object_id=object_id, timeout_seconds=60, window_seconds=W, callback_url=callback
    )
    await create_job(store, first.job)
    store.now += W + 1
    again = await submit(
        store, object_id=object_id, timeout_seconds=60, window_seconds=W, callback_url=callback
    )
    assert again.created
    assert again.lost_writes == 0
    assert store.calls[-1] == f"patch_window {shard_name(object_id)}"
