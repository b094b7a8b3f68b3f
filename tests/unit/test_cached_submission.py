"""The cached paths of a submission, the server-clock bounds and the claim history, step by
step (docs/design.md, "The cached paths")."""

import asyncio
import contextlib
import copy
from typing import Any

import pytest

from reportjobs_gateway.caches import ClaimHistory, ShardCatchUp, trim_reportjob
from reportjobs_gateway.changes import Changes
from reportjobs_gateway.ports import ReportJob, Stale
from reportjobs_gateway.servertime import DRIFT, MAX_AGE_SECONDS, ServerClock, ServerNow
from reportjobs_gateway.submission import Path, Submitted, create_job, submit
from reportjobs_model.window import EPOCH_KEY, claim_of, entry_key, removal_write, shard_name
from tests.unit.fakes import FakeStore

W = 300
T0 = 1_700_000_000
SHARD = shard_name("invoice-42")
KEY = entry_key("invoice-42")


class Local:
    """A local monotonic clock far from the server's (no synchronisation)."""

    def __init__(self) -> None:
        self.t = 5_000.0

    def __call__(self) -> float:
        return self.t


class Cache:
    """The Cache protocol over explicit contents, with the real clock and claim history."""

    def __init__(self, clock: ServerClock, history: ClaimHistory | None = None) -> None:
        self.clock = clock
        self.history = history or ClaimHistory(clock)
        self.windows: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, ReportJob] = {}
        self.changes = Changes()
        self.catch_up = ShardCatchUp(self.window, catch_up_seconds=0.05)

    def show(self, store: FakeStore) -> None:
        """Catch up with the store (as a watch would, version by version for our shard)."""
        for name, shard in store.windows.items():
            old = self.windows.get(name)
            self.history.changed(old, shard)
            self.windows[name] = copy.deepcopy(shard)
            self.catch_up.changed(old, self.windows[name])
        before, self.jobs = self.jobs, copy.deepcopy(store.objects)
        for name, job in self.jobs.items():
            if before.get(name) != job:
                self.changes.changed(before.get(name), job)

    def ready(self) -> bool:
        return True

    def now(self) -> ServerNow | None:
        return self.clock.now()

    def window(self, name: str) -> dict[str, Any] | None:
        return self.windows.get(name)

    def job(self, name: str) -> ReportJob | None:
        return self.jobs.get(name)

    def watching(self, name: str) -> contextlib.AbstractContextManager[asyncio.Event]:
        return self.changes.watching(name)

    def claim_time_allowed(self, shard: str, key: str, accepted: int) -> bool:
        return self.history.claim_time_allowed(shard, key, accepted)

    async def moved_on(self, shard: str, *, from_version: str | None) -> bool:
        return await self.catch_up.moved_on(shard, from_version=from_version)


def _clock(local: Local, *, date: float, rtt: float = 0.0) -> ServerClock:
    clock = ServerClock(monotonic=local)
    clock.observe(date=date, sent=local.t - rtt, received=local.t)
    return clock


# --- the bounds ---------------------------------------------------------------------------


def test_the_bounds_of_the_servers_time() -> None:
    local = Local()
    clock = _clock(local, date=T0, rtt=0.25)
    now = clock.now()
    assert now == ServerNow(earliest=T0, latest=T0 + 1 + 0.25 * (1 + DRIFT))
    local.t += 10
    now = clock.now()
    assert now is not None
    assert now.earliest == pytest.approx(T0 + 10 * (1 - DRIFT))
    assert now.latest == pytest.approx(T0 + 1 + 0.25 * (1 + DRIFT) + 10 * (1 + DRIFT))
    assert now.accepted_second == T0 + 9  # 9.99 s certainly passed, 10 maybe not


def test_bounds_of_an_earlier_moment_run_the_drift_the_other_way() -> None:
    local = Local()
    clock = _clock(local, date=T0)
    before = clock.at(local.t - 10)
    assert before is not None
    assert before.earliest == pytest.approx(T0 - 10 * (1 + DRIFT))
    assert before.latest == pytest.approx(T0 + 1 - 10 * (1 - DRIFT))


def test_no_bounds_without_a_fresh_answer() -> None:
    local = Local()
    assert ServerClock(monotonic=local).now() is None
    clock = _clock(local, date=T0)
    local.t += MAX_AGE_SECONDS + 0.1
    assert clock.now() is None


def test_the_latest_answer_counts() -> None:
    local = Local()
    clock = _clock(local, date=T0)
    clock.observe(date=T0 - 50, sent=local.t - 2, received=local.t - 1)  # an older answer
    now = clock.now()
    assert now is not None
    assert now.earliest == T0


# --- the cached paths ----------------------------------------------------------------------


async def _submit(
    store: FakeStore, cache: Cache | None, object_id: str = "invoice-42"
) -> Submitted:
    """A submission, then what the gateway does after a 201: create its job."""
    outcome = await submit(
        store, object_id=object_id, timeout_seconds=60, window_seconds=W, cache=cache
    )
    if outcome.to_create is not None:
        await create_job(store, outcome.to_create)
    return outcome


async def test_a_new_claim_on_the_cached_shard_costs_two_requests() -> None:
    local, store = Local(), FakeStore(now=T0 + 0.5)
    cache = Cache(_clock(local, date=T0, rtt=0.01))
    local.t += 3
    store.now += 3
    outcome = await _submit(store, cache)
    assert (outcome.created, outcome.path) == (True, Path.CACHED_SHARD)
    assert store.calls == [f"create_window {SHARD}", f"create {outcome.job['metadata']['name']}"]
    claim = claim_of(store.windows[SHARD]["data"][KEY])
    assert claim is not None
    assert claim.accepted_at == T0 + 2  # a second the server had certainly reached (2.99 s)


NEIGHBOUR = "invoice-776"
"""Another object of invoice-42's shard."""
assert shard_name(NEIGHBOUR) == SHARD


class WatchedStore(FakeStore):
    """A FakeStore whose shard writes reach the cache when they are answered (the write-through
    and the watch, at once)."""

    cache: Cache | None = None

    async def create_window(self, body: dict[str, Any]) -> dict[str, Any]:
        written = await super().create_window(body)
        if self.cache is not None:
            self.cache.show(self)
        return written

    async def patch_window(
        self, name: str, patch: list[dict[str, Any]], *, based_on: str
    ) -> dict[str, Any]:
        written = await super().patch_window(name, patch, based_on=based_on)
        if self.cache is not None:
            self.cache.show(self)
        return written


async def _with_shard(store: FakeStore | None = None) -> tuple[Local, FakeStore, Cache]:
    """invoice-42's shard exists (a claim of a third object), and the cache shows it."""
    local, store = Local(), store or FakeStore(now=T0)
    cache = Cache(_clock(local, date=T0))
    local.t += 3  # later than the cache's list, by a second the server surely reached
    store.now += 3
    await _submit(store, cache, "invoice-1235")
    cache.show(store)
    store.calls.clear()
    return local, store, cache


async def test_objects_of_one_shard_claim_at_once_on_one_cached_version() -> None:
    """Two objects of one shard, each written on the same cached version: each patch tests only
    its own object's entry and the epoch, so neither loses (a replace carrying the cached
    resourceVersion, as before the patches, would have lost one)."""
    _, store, cache = await _with_shard()
    first, second = await asyncio.gather(
        submit(store, object_id="invoice-42", timeout_seconds=60, window_seconds=W, cache=cache),
        submit(store, object_id=NEIGHBOUR, timeout_seconds=60, window_seconds=W, cache=cache),
    )
    assert (first.created, second.created) == (True, True)
    assert (first.path, second.path) == (Path.CACHED_SHARD, Path.CACHED_SHARD)
    assert (first.lost_writes, second.lost_writes, second.delay) == (0, 0, "none")
    assert store.calls == [f"patch_window {SHARD}", f"patch_window {SHARD}"]
    assert set(store.windows[SHARD]["data"]) == {
        KEY,
        entry_key(NEIGHBOUR),
        entry_key("invoice-1235"),
        EPOCH_KEY,
    }


async def test_one_object_submitted_twice_at_once_gets_one_job() -> None:
    """Both submissions write on the same cached version: the second patch's test of the
    object's entry fails, and once the cache shows the winner, its job is the answer."""
    store = WatchedStore(now=T0)
    _, _, cache = await _with_shard(store)
    store.cache = cache
    first, second = await asyncio.gather(
        submit(store, object_id="invoice-42", timeout_seconds=60, window_seconds=W, cache=cache),
        submit(store, object_id="invoice-42", timeout_seconds=60, window_seconds=W, cache=cache),
    )
    assert sorted([first.created, second.created]) == [False, True]
    assert first.job["metadata"]["name"] == second.job["metadata"]["name"]
    loser = second if first.created else first
    assert (loser.lost_writes, loser.delay) == (1, "lost")
    assert f"get_window {SHARD}" not in store.calls


async def _removed(store: FakeStore, key: str) -> None:
    """The operator's sweep removes the claim under `key` from invoice-42's shard."""
    patch = removal_write(store.windows[SHARD], keys=[key]).patch
    assert patch is not None
    await store.patch_window(SHARD, patch, based_on="")


async def _pruned_behind_the_cache() -> tuple[FakeStore, Cache]:
    """The operator's sweep removed a closed claim from invoice-42's shard (its epoch moved on),
    which the cache does not show yet; no call recorded."""
    local, store, cache = await _with_shard()
    local.t += W + 1
    store.now += W + 1
    cache.clock.observe(date=store.now // 1, sent=local.t, received=local.t)
    await _removed(store, entry_key("invoice-1235"))
    assert set(store.windows[SHARD]["data"]) == {EPOCH_KEY}
    store.calls.clear()
    return store, cache


async def test_a_lost_cached_write_is_tried_again_on_the_version_that_won() -> None:
    """A removal landed after the cached version: the write loses (its epoch test), the watch
    brings the new version, and the claim is written on it (no read of the shard)."""
    store, cache = await _pruned_behind_the_cache()

    async def watch_brings_it(point: str) -> None:
        await asyncio.sleep(0)
        if point == "patch_window":  # our write is on its way, and will lose
            cache.show(store)

    store.pause = watch_brings_it
    outcome = await submit(
        store, object_id="invoice-42", timeout_seconds=60, window_seconds=W, cache=cache
    )
    assert (outcome.created, outcome.path, outcome.lost_writes) == (True, Path.CACHED_SHARD, 1)
    assert store.calls == [f"patch_window {SHARD}", f"patch_window {SHARD}"]
    assert set(store.windows[SHARD]["data"]) == {KEY, EPOCH_KEY}


async def test_a_lost_cached_write_whose_winner_does_not_arrive_goes_to_the_api() -> None:
    store, cache = await _pruned_behind_the_cache()
    outcome = await submit(
        store, object_id="invoice-42", timeout_seconds=60, window_seconds=W, cache=cache
    )
    assert (outcome.created, outcome.path, outcome.lost_writes) == (True, Path.API, 1)
    assert store.calls == [
        f"patch_window {SHARD}",
        f"get_window {SHARD}",
        f"patch_window {SHARD}",
    ]


async def test_a_cached_open_claim_is_answered_without_a_request() -> None:
    local, store = Local(), FakeStore(now=T0)
    cache = Cache(_clock(local, date=T0))
    first = await _submit(store, cache)
    cache.show(store)
    store.calls.clear()
    local.t += 10
    second = await _submit(store, cache)
    assert (second.created, second.path) == (False, Path.CACHED)
    assert second.job["metadata"]["name"] == first.job["metadata"]["name"]
    assert store.calls == []


async def test_a_claim_that_may_have_closed_goes_to_the_api() -> None:
    """Open at the earliest the server's time can be, maybe closed at the latest: neither
    cached path decides; the API's Date does."""
    local, store = Local(), FakeStore(now=T0)
    cache = Cache(_clock(local, date=T0))
    first = await _submit(store, cache)
    cache.show(store)
    accepted = claim_of(store.windows[SHARD]["data"][KEY])
    assert accepted is not None
    local.t += accepted.accepted_at + W - T0 - 0.5  # within a second of the window's end
    store.now = accepted.accepted_at + W - 0.5
    store.calls.clear()
    again = await _submit(store, cache)
    assert again.path == Path.API
    assert store.calls[0] == f"get_window {SHARD}"
    assert again.job["metadata"]["name"] == first.job["metadata"]["name"]


async def test_a_cached_claim_whose_job_is_not_cached_reads_the_job() -> None:
    local, store = Local(), FakeStore(now=T0)
    cache = Cache(_clock(local, date=T0))
    first = await _submit(store, cache)
    cache.show(store)
    cache.jobs.clear()
    store.calls.clear()
    again = await _submit(store, cache)
    assert (again.created, again.path) == (False, Path.CACHED_SHARD)
    assert store.calls == [f"get {first.job['metadata']['name']}"]


async def test_a_stale_cached_shard_falls_back_to_the_api() -> None:
    """Another replica claimed meanwhile: the write on the cached version is refused (409),
    and the API path answers with that replica's job."""
    local, store = Local(), FakeStore(now=T0)
    cache = Cache(_clock(local, date=T0))
    local.t += 2  # past the moment the cache listed (and saw no shard)
    store.now += 2
    theirs = await _submit(store, None)
    assert theirs.created
    store.calls.clear()
    ours = await _submit(store, cache)
    assert (ours.created, ours.path) == (False, Path.API)
    assert ours.job["metadata"]["name"] == theirs.job["metadata"]["name"]
    assert store.calls[:2] == [f"create_window {SHARD}", f"get_window {SHARD}"]


async def test_a_refused_patch_on_the_cached_version_goes_to_the_api() -> None:
    class Refusing(FakeStore):
        refusals = 1

        async def patch_window(
            self, name: str, patch: list[dict[str, Any]], *, based_on: str
        ) -> dict[str, Any]:
            if self.refusals:
                self.refusals -= 1
                self.calls.append("patch_window refused")
                raise Stale("injected")
            return await super().patch_window(name, patch, based_on=based_on)

    local, store = Local(), Refusing(now=T0)
    cache = Cache(_clock(local, date=T0))
    store.windows[SHARD] = {
        "metadata": {"name": SHARD, "uid": "uid-shard", "resourceVersion": "7"},
        "data": {EPOCH_KEY: "3"},
    }
    cache.show(store)
    local.t += 2  # past the moment the cache listed
    store.now += 2
    outcome = await _submit(store, cache)
    assert (outcome.created, outcome.path) == (True, Path.API)
    assert store.calls[:3] == [
        "patch_window refused",
        f"get_window {SHARD}",
        f"patch_window {SHARD}",
    ]


async def test_a_claim_removed_just_now_is_not_trusted_to_be_a_window_old() -> None:
    """The operator's sweep removed the object's claim at server second T0+300 (its window's
    end); the cache saw it go. The latest answer was stamped T0+299 but arrived 0.9 s later, so
    the earliest the server's time can be is still below T0+300: a claim taken from the cache
    now could be accepted at T0+299, 299 s after the last one. The history refuses it; the API
    path claims at the read's Date instead, a full window later."""
    local, store = Local(), FakeStore(now=T0)
    first = await _submit(store, None)
    assert first.created
    clock = _clock(local, date=T0 + 299, rtt=0.9)
    cache = Cache(clock)
    cache.show(store)
    store.now = T0 + 300.2
    await _removed(store, KEY)  # the sweep, at Date T0+300
    local.t += 0.3
    cache.show(store)  # the cache sees the claim go
    local.t += 0.5
    store.now = T0 + 300.7
    assert ClaimHistory.claim_time_allowed(cache.history, SHARD, KEY, T0 + 299) is False
    store.calls.clear()
    second = await _submit(store, cache)
    assert second.created
    assert second.path == Path.API
    assert second.job["spec"]["acceptedAt"] == "2023-11-14T22:18:20Z"  # T0 + 300

    class ForgetsRemovals(ClaimHistory):
        def claim_time_allowed(self, shard: str, key: str, accepted: int) -> bool:
            return True

    # The same with a history that forgets: two jobs 299 s apart.
    local, store = Local(), FakeStore(now=T0)
    await _submit(store, None)
    clock = _clock(local, date=T0 + 299, rtt=0.9)
    cache = Cache(clock, ForgetsRemovals(clock))
    store.now = T0 + 300.2
    await _removed(store, KEY)
    local.t += 0.8
    cache.show(store)
    store.now = T0 + 300.7
    broken = await _submit(store, cache)
    assert broken.path == Path.CACHED_SHARD
    assert broken.job["spec"]["acceptedAt"] == "2023-11-14T22:18:19Z"  # T0 + 299: too early


async def test_after_a_relist_claims_wait_until_the_list_is_surely_past() -> None:
    local = Local()
    clock = _clock(local, date=T0, rtt=0.1)
    history = ClaimHistory(clock)
    history.relisted()
    assert not history.claim_time_allowed(SHARD, KEY, T0)
    assert not history.claim_time_allowed(SHARD, KEY, T0 + 1)
    assert history.claim_time_allowed(SHARD, KEY, T0 + 2)


def test_cached_jobs_keep_what_the_api_shows() -> None:
    rj = {
        "metadata": {"name": "rj-x", "uid": "u", "resourceVersion": "3", "managedFields": [1]},
        "spec": {"objectId": "x"},
        "status": {"phase": "Running", "pods": ["p"], "conditions": [], "attempts": 1},
    }
    assert trim_reportjob(rj) == {
        "metadata": {"name": "rj-x", "uid": "u", "resourceVersion": "3"},
        "spec": {"objectId": "x"},
        "status": {"phase": "Running", "attempts": 1},
    }


async def test_the_upper_bound_needs_the_second_the_date_truncates() -> None:
    """The latest answer said T0+299 (truncated: the server may have been at T0+299.99), half a
    second ago, so the server may be past T0+300, where the claim accepted at T0 closed: the
    cache must not answer with it. Without the +1 it would, though a new job is due."""

    class WithoutTheSecond(ServerClock):
        def at(self, local: float) -> ServerNow | None:
            bounds = super().at(local)
            return None if bounds is None else ServerNow(bounds.earliest, bounds.latest - 1)

    for clock_type, expected in (
        (ServerClock, (True, Path.API)),
        (WithoutTheSecond, (False, Path.CACHED)),
    ):
        local, store = Local(), FakeStore(now=T0)
        await _submit(store, None)
        clock = clock_type(monotonic=local)
        clock.observe(date=T0 + 299, sent=local.t, received=local.t)
        cache = Cache(clock)
        cache.show(store)
        local.t += 0.5
        store.now = T0 + 300.4
        outcome = await _submit(store, cache)
        assert (outcome.created, outcome.path) == expected
