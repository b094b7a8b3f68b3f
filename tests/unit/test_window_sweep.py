"""The operator's sweep of the gateway's window shards: claims completed, closed claims pruned,
ReportJobs released to retention once their claim is gone."""

import json
from pathlib import Path
from typing import Any

import pytest

from reportjobs_model.reportjob import build_reportjob
from reportjobs_model.window import (
    EPOCH_KEY,
    FIRST_EPOCH,
    SHARD_COUNT,
    SHARD_PREFIX,
    Claim,
    build_window_shard,
    claim_of,
    claim_write,
    is_canonical,
)
from reportjobs_operator.windows import WindowSweep, pruning_write
from tests.unit.fakes import FakeStore

T0 = 1_700_000_000
HELPERS = Path(__file__).resolve().parents[2] / "deploy/helm/reportjobs/templates/_helpers.tpl"


def _claim(object_id: str, accepted: int, window: int = 10) -> Claim:
    return Claim.new(object_id=object_id, now=accepted, window_seconds=window, timeout_seconds=5)


def _entry(object_id: str, accepted: int, window: int = 10) -> str:
    return _claim(object_id, accepted, window).to_entry()


async def _shard(
    store: FakeStore, name: str, data: dict[str, str], *, epoch: str | None = FIRST_EPOCH
) -> None:
    """A shard as the gateway creates it (with its first epoch; None: as before the epochs)."""
    with_epoch = data if epoch is None else {**data, EPOCH_KEY: epoch}
    await store.create_window(build_window_shard(name=name, data=with_epoch))


def _claims(store: FakeStore, name: str) -> dict[str, str]:
    """The shard's claims, after checking that its epoch moved on from the first."""
    data = dict(store.windows[name]["data"])
    assert data.pop(EPOCH_KEY) not in (None, FIRST_EPOCH)
    return data


async def _job(store: FakeStore, object_id: str, accepted: int) -> str:
    claim = _claim(object_id, accepted)
    await store.create(build_reportjob(object_id=object_id, claim=claim))
    return claim.job_name


def _taken_on(_: str) -> bool:
    """Every ReportJob is accepted by its operator (reconcile.py)."""
    return True


def _sweep(store: FakeStore) -> WindowSweep:
    return WindowSweep(api=store, indexed=lambda: set(store.objects), accepted=_taken_on)


async def test_closed_claims_are_pruned_once_their_job_exists() -> None:
    store = FakeStore(now=T0 + 11.5)
    for object_id, accepted in (("a", T0), ("b", T0 + 5), ("c", T0 + 1), ("d", T0 + 9)):
        await _job(store, object_id, accepted)
    await _shard(store, "reportjobs-windows-00", {"a": _entry("a", T0), "b": _entry("b", T0 + 5)})
    await _shard(store, "reportjobs-windows-01", {"c": _entry("c", T0 + 1)})
    await _shard(store, "reportjobs-windows-02", {"d": _entry("d", T0 + 9)})
    store.calls.clear()

    swept = await _sweep(store).run()

    assert (swept.pruned, swept.completed) == (2, 0)
    assert _claims(store, "reportjobs-windows-00") == {"b": _entry("b", T0 + 5)}
    assert _claims(store, "reportjobs-windows-01") == {}
    assert store.windows["reportjobs-windows-02"]["data"] == {
        "d": _entry("d", T0 + 9),
        EPOCH_KEY: FIRST_EPOCH,  # nothing removed
    }
    assert sorted(store.calls) == [
        "patch_window reportjobs-windows-00",
        "patch_window reportjobs-windows-01",
    ]


async def test_a_claim_left_without_its_job_is_completed_then_pruned() -> None:
    """The gateway died between its 201 and the create: the claim is the accepted job. It is
    kept while its job is missing, even closed, and completed when a second sweep still finds
    it missing (a first sweep may just race the gateway's create)."""
    store = FakeStore(now=T0 + 11.5)
    claim = _claim("a", T0)
    await _shard(store, "reportjobs-windows-00", {"a": claim.to_entry()})
    sweep = _sweep(store)

    assert (await sweep.run()).completed == 0
    assert store.objects == {}
    assert "a" in store.windows["reportjobs-windows-00"]["data"]

    assert (await sweep.run()).completed == 1
    assert store.objects[claim.job_name] == {
        **build_reportjob(object_id="a", claim=claim),
        "metadata": store.objects[claim.job_name]["metadata"],
        "status": {"phase": "Pending"},  # its operator took it on
    }
    assert store.objects[claim.job_name]["spec"]["objectId"] == "a"

    assert (await sweep.run()).pruned == 1  # now that it exists, the closed claim goes
    assert _claims(store, "reportjobs-windows-00") == {}


async def test_a_job_created_meanwhile_is_not_created_again() -> None:
    store = FakeStore(now=T0 + 1)
    claim = _claim("a", T0)
    await _shard(store, "reportjobs-windows-00", {"a": claim.to_entry()})
    indexed: set[str] = set()
    sweep = WindowSweep(api=store, indexed=lambda: indexed, accepted=_taken_on)
    await sweep.run()
    await _job(store, "a", T0)  # the gateway's create, not in the index yet
    assert (await sweep.run()).completed == 0
    assert store.calls.count(f"create {claim.job_name}") == 2  # its own, and the sweep's 409


async def test_claims_that_name_no_object_are_pruned_when_closed_and_never_completed() -> None:
    """Claims written before claims named their object: their job was created before the 201."""
    store = FakeStore(now=T0 + 11.5)
    legacy = json.loads(_entry("a", T0))
    del legacy["objectId"]
    entry = json.dumps(legacy)
    assert claim_of(entry) is not None
    await _shard(store, "reportjobs-windows-00", {"a": entry, "b": _entry("b", T0 + 5)})
    await _job(store, "b", T0 + 5)
    sweep = _sweep(store)
    await sweep.run()
    await sweep.run()
    assert set(_claims(store, "reportjobs-windows-00")) == {"b"}
    assert list(store.objects) == [_claim("b", T0 + 5).job_name]


async def test_released_are_the_indexed_jobs_whose_claim_the_list_did_not_show() -> None:
    store = FakeStore(now=T0 + 30)
    gone = await _job(store, "a", T0)  # its claim pruned long ago
    held = await _job(store, "b", T0 + 25)
    await _shard(store, "reportjobs-windows-00", {"b": _entry("b", T0 + 25)})
    late = _claim("c", T0 + 29).job_name
    snapshots = iter([{gone, held}, {gone, held, late}])  # `late` arrives during the list
    sweep = WindowSweep(api=store, indexed=lambda: next(snapshots), accepted=_taken_on)
    assert not sweep.released(gone)  # nothing is released before a sweep
    await sweep.run()
    assert sweep.released(gone)
    assert not sweep.released(held)
    assert not sweep.released(late)  # its claim may have been written after the list was read


def _patch(shard: dict[str, object], *, key: str, entry: str) -> list[dict[str, object]]:
    patch = claim_write(shard, key=key, entry=entry).patch
    assert patch is not None
    return patch


async def _listed_with_a_closed_claim() -> tuple[FakeStore, list[dict[str, object]]]:
    """Object a's closed claim (its job exists) in a shard, as the sweep's list shows it."""
    store = FakeStore(now=T0 + 20)
    await _job(store, "a", T0)
    await _shard(store, "reportjobs-windows-00", {"a": _entry("a", T0)})
    listed, now = await store.list_window_shards()
    assert pruning_write(listed[0], now=now, exists=lambda _: True) is not None
    return store, listed


async def test_a_claim_of_another_object_since_the_list_does_not_stop_the_pruning() -> None:
    store, listed = await _listed_with_a_closed_claim()
    current = store.windows["reportjobs-windows-00"]
    await store.patch_window(
        "reportjobs-windows-00",
        _patch(current, key="x", entry=_entry("x", T0 + 19)),
        based_on="",
    )
    swept = await WindowSweep(
        api=_Stale(store, listed), indexed=lambda: set(store.objects), accepted=_taken_on
    ).run()
    assert swept.pruned == 1
    assert set(_claims(store, "reportjobs-windows-00")) == {"x"}


async def test_a_new_claim_of_the_object_since_the_list_is_left_alone() -> None:
    """Object a claimed again after the list: the sweep's test of a's entry fails."""
    store, listed = await _listed_with_a_closed_claim()
    current = store.windows["reportjobs-windows-00"]
    again = _entry("a", T0 + 19)
    await store.patch_window(
        "reportjobs-windows-00", _patch(current, key="a", entry=again), based_on=""
    )
    swept = await WindowSweep(
        api=_Stale(store, listed), indexed=lambda: set(store.objects), accepted=_taken_on
    ).run()
    assert swept.pruned == 0
    assert store.windows["reportjobs-windows-00"]["data"] == {"a": again, EPOCH_KEY: FIRST_EPOCH}


async def test_a_shard_without_an_epoch_is_pruned_by_a_replace_that_sets_one() -> None:
    """A shard as a gateway of before the epochs left it."""
    store = FakeStore(now=T0 + 20)
    await _job(store, "a", T0)
    await _shard(store, "reportjobs-windows-00", {"a": _entry("a", T0)}, epoch=None)
    store.calls.clear()
    assert (await _sweep(store).run()).pruned == 1
    assert store.calls == ["replace_window reportjobs-windows-00"]
    assert _claims(store, "reportjobs-windows-00") == {}


class _Stale:
    """Answers the list from before a concurrent write."""

    def __init__(self, store: FakeStore, listed: list[dict[str, object]]) -> None:
        self.store, self.listed = store, listed

    async def list_window_shards(self) -> tuple[list[dict[str, object]], float]:
        return self.listed, self.store.now

    async def patch_window_shard(self, *, name: str, patch: list[dict[str, object]]) -> None:
        await self.store.patch_window_shard(name=name, patch=patch)

    async def create_reportjob(self, *, body: dict[str, object]) -> dict[str, object]:
        return await self.store.create_reportjob(body=body)


def test_the_chart_grants_exactly_the_model_shards() -> None:
    text = HELPERS.read_text()
    assert f'printf "{SHARD_PREFIX}%02x"' in text
    assert f"until {SHARD_COUNT}" in text


def _raw_entry(object_id: str, accepted: int, *, callback_url: str) -> str:
    """A claim as a writer of before canonical entries wrote it: `&` and `<` raw."""
    claim = Claim.new(
        object_id=object_id,
        now=accepted,
        window_seconds=10,
        timeout_seconds=5,
        callback_url=callback_url,
    )
    fields = json.loads(claim.to_entry())
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)


async def test_a_shard_holding_entries_of_before_heals_at_its_next_sweep() -> None:
    """Entries written raw (`&`, `<`, non-ASCII) can never be tested by a JSON patch on the API
    server: the sweep replaces the shard with the resourceVersion it listed, every entry
    canonical, and from then on patches work again."""
    store = FakeStore(now=T0 + 11.5)
    old = _raw_entry("a&<é", T0, callback_url="http://h/?a=1&b=2")
    open_one = _raw_entry("b&", T0 + 5, callback_url="http://h/?x=<y>")
    assert not is_canonical(old)
    await _job(store, "a&<é", T0)
    await _shard(store, "reportjobs-windows-00", {"a": old, "b": open_one})
    store.calls.clear()

    swept = await _sweep(store).run()

    assert (swept.pruned, swept.lost) == (1, 0)
    assert store.calls == ["replace_window reportjobs-windows-00"]
    healed = _claims(store, "reportjobs-windows-00")
    assert list(healed) == ["b"]
    assert is_canonical(healed["b"])
    assert claim_of(healed["b"]) == claim_of(open_one)
    write = claim_write(store.windows["reportjobs-windows-00"], key="b", entry=_entry("b", T0 + 15))
    assert write.patch is not None  # canonical again: a patch tests it


async def test_a_refused_pruning_write_is_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FakeStore(now=T0 + 11.5)
    await _job(store, "a", T0)
    await _shard(store, "reportjobs-windows-00", {"a": _entry("a", T0)})

    shards, _ = await store.list_window_shards()
    sweep = _sweep(store)
    store.windows["reportjobs-windows-00"]["data"][EPOCH_KEY] = "moved"  # a removal came first
    store.list_window_shards = _listing(shards)  # type: ignore[method-assign]
    with caplog.at_level("INFO"):
        swept = await sweep.run()
    assert (swept.pruned, swept.lost) == (0, 1)
    assert "not pruned" in caplog.text


def _listing(shards: list[dict[str, Any]]) -> Any:
    async def listing() -> tuple[list[dict[str, Any]], float]:
        return shards, T0 + 11.5

    return listing


async def test_the_closed_claim_of_a_job_not_accepted_yet_stays() -> None:
    """Until its operator has checked that its claim names it, a ReportJob's claim stays: the
    check tells a ReportJob created again after its deletion (no claim) from one not taken on
    yet."""
    store = FakeStore(now=T0 + 11.5)
    name = await _job(store, "a", T0)
    await _shard(store, "reportjobs-windows-00", {"a": _entry("a", T0)})
    accepted: set[str] = set()
    sweep = WindowSweep(
        api=store, indexed=lambda: set(store.objects), accepted=accepted.__contains__
    )
    assert (await sweep.run()).pruned == 0
    accepted.add(name)
    assert (await sweep.run()).pruned == 1


async def test_a_healing_replace_that_lost_to_a_write_is_tried_on_a_fresh_read() -> None:
    """On a busy shard the list is soon stale for a REPLACE: it is tried once more on a GET."""
    store = FakeStore(now=T0 + 11.5)
    await _job(store, "a&<é", T0)
    old = _raw_entry("a&<é", T0, callback_url="http://h/?a=1&b=2")
    await _shard(store, "reportjobs-windows-00", {"a": old})
    listed, _ = await store.list_window_shards()
    shard = store.windows["reportjobs-windows-00"]
    write = claim_write(shard, key="b", entry=_entry("b", T0 + 11))  # a claim since the list
    assert write.patch is not None  # its own entry is testable
    await store.patch_window("reportjobs-windows-00", write.patch, based_on="")
    store.list_window_shards = _listing(listed)  # type: ignore[method-assign]
    store.calls.clear()

    swept = await _sweep(store).run()

    assert (swept.pruned, swept.lost) == (1, 0)
    assert store.calls == [
        "replace_window reportjobs-windows-00",  # on the list: refused
        "get_window reportjobs-windows-00",
        "replace_window reportjobs-windows-00",
    ]
    assert list(_claims(store, "reportjobs-windows-00")) == ["b"]
