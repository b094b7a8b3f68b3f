"""Property: whatever the interleaving, the delays between a request's stamp, its commit and its
answer, the crashes of submitters, the collection of closed window records and deletions of
ReportJobs by hand at any moment, an object never gets two jobs less than a window apart, every
submission is answered with the object's job for a moment it was in flight (docs/design.md,
"Why it is exact"), no job runs twice (a deleted one is never taken on again: "Deleting a
job"), and closed claims leave their shards. Again with the gateway's cached paths, on caches
that lag the store arbitrarily ("The cached paths"). A 201 is answered once the claim is
written; the ReportJob's create after it may crash, and the operator's sweep completes the
claim: every job answered exists in the end. Object ids and callback URLs hold the characters
that encoders disagree on (tests/contract/: the fake compares a JSON patch's test as the API
server does)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import random
import unittest.mock
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from reportjobs_gateway.caches import ClaimHistory
from reportjobs_gateway.ports import Read, ReportJob, StoreUnavailable
from reportjobs_gateway.servertime import ServerClock, ServerNow
from reportjobs_gateway.submission import create_job, submit
from reportjobs_model import window
from reportjobs_model.reportjob import accepted_unix, is_accepted, is_deleting
from reportjobs_model.window import (
    EPOCH_KEY,
    Claim,
    awaits_its_job,
    claim_of,
    names_its_job,
    place_of_job,
    shard_name,
)
from reportjobs_operator.ports import Conflict
from reportjobs_operator.windows import WindowSweep
from tests.unit.fakes import (
    LAST_DATE,
    FakeStore,
    apply_json_patch,
    decoded_equal,
    delete_or_mark,
)

W = 10
T0 = 1_700_000_000


def _sibling(object_id: str, *, tail: str) -> str:
    """An object id that ends in `tail` plus a few characters, in the shard of `object_id`."""
    letters = '&<>é😀\x01"\\/ab'
    for first in letters:
        for second in letters:
            for third in letters:
                candidate = f"{tail}{first}{second}{third}"
                if shard_name(candidate) == shard_name(object_id):
                    return candidate
    raise AssertionError("no sibling found")


X = "x&<y>"
OBJECTS = (X, 'é😀\x01\n"\\/\x7f', _sibling(X, tail=('&<>"\\/é😀\x01' * 29)[:253]))
"""The third (256 characters) shares the first's shard: their claims are written concurrently,
each testing its own entry. Between them they hold every character class of the contract test."""
assert len(OBJECTS[2]) == 256
CALLBACKS = (None, "https://example.com/hook?a=1&b=<2>", "https://example.com/é?q=😀&x=\x7f")

SPANNING = ((0.0, 3), (0.3, 1), (1.0, 1), (2.5, 1), (5.0, 1), (W - 0.5, 1), (W, 1), (W + 3.0, 1))
"""How far the server clock may move at a request's pause (and how often, relatively): nothing,
jitter, a slow webhook, a window. Long delays are as frequent as short ones: requests span
windows, and almost no submission lands inside an open one."""

IN_WINDOW = (
    (0.0, 850),
    (0.3, 60),
    (1.0, 40),
    (2.5, 20),
    (5.0, 10),
    (W - 0.5, 7),
    (W, 6),
    (W + 3.0, 7),
)
"""The same delays, mostly nothing (per mille), so that many submissions land inside an open
window (a 200); the long ones still come often enough that requests span windows. With either,
a pause between requests ("idle") moves the clock only once in ten."""

Delays = tuple[tuple[float, int], ...]


class Crash(Exception):
    """The gateway died (or the connection broke) at this point of a request."""


@dataclass
class Answer:
    object_id: str
    started: float
    ended: float
    job_name: str
    created: bool


class LaggingCache:
    """The gateway's caches as the watches feed them, behind the store by any number of
    versions: each pause applies some more shard versions in order (a watch), sometimes all of
    them at once skipping versions (a relist), and sometimes refreshes the jobs. The clock and
    the claim history are the gateway's own; the clock is fed with every answer's Date, the
    local time it was sent and received, on a local clock with an arbitrary offset."""

    def __init__(
        self, store: FakeStore, *, clock: ServerClock, history: type[ClaimHistory]
    ) -> None:
        self.store = store
        self.clock = clock
        self.history = history(clock)
        self.windows: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, ReportJob] = {}
        self.applied = 0
        self.relist()

    def advance(self, rnd: random.Random) -> None:
        roll = rnd.random()
        if roll < 0.05:
            self.relist()
        elif roll < 0.7:
            self.apply(rnd.randint(1, 3))
        if rnd.random() < 0.3:
            self.jobs = {name: dict(job) for name, job in self.store.objects.items()}

    def relist(self) -> None:
        self.history.relisted()
        self.applied = len(self.store.window_history)
        for name, shard in self.store.windows.items():
            self._put(name, shard)

    def apply(self, count: int) -> None:
        for shard in self.store.window_history[self.applied : self.applied + count]:
            self._put(shard["metadata"]["name"], shard)
            self.applied += 1

    def _put(self, name: str, shard: dict[str, Any]) -> None:
        old = self.windows.get(name)
        if old is not None and int(old["metadata"]["resourceVersion"]) >= int(
            shard["metadata"]["resourceVersion"]
        ):
            return  # as the informer: never back to an older version
        self.history.changed(old, shard)
        self.windows[name] = shard

    def written(self, based_on: str | None, shard: dict[str, Any]) -> None:
        """Write-through of our own write, only onto the version it was based on (versions in
        between are skipped, as the gateway's cache skips them)."""
        cached = self.windows.get(shard["metadata"]["name"])
        if (None if cached is None else cached["metadata"]["resourceVersion"]) == based_on:
            self._put(shard["metadata"]["name"], shard)

    # the Cache protocol
    def ready(self) -> bool:
        return True

    def now(self) -> ServerNow | None:
        return self.clock.now()

    def window(self, name: str) -> dict[str, Any] | None:
        return self.windows.get(name)

    def job(self, name: str) -> ReportJob | None:
        return self.jobs.get(name)

    def claim_time_allowed(self, shard: str, key: str, accepted: int) -> bool:
        return self.history.claim_time_allowed(shard, key, accepted)

    async def moved_on(self, shard: str, *, from_version: str | None) -> bool:
        """The wait ends after some progress of the world, with whatever the cache has then
        (it may still be the version that lost)."""
        await self.store.pause("catching up")
        cached = self.windows.get(shard)
        return (None if cached is None else cached["metadata"]["resourceVersion"]) != from_version


class ClockedStore(FakeStore):
    """Feeds the gateway's clock with every answer, as KubeStore does; writes through."""

    cache: LaggingCache | None = None
    local_offset = 0.0

    def local(self) -> float:
        return self.now + self.local_offset

    async def _timed(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        sent = self.local()
        result = await call(*args, **kwargs)
        if self.cache is not None:
            self.cache.clock.observe(date=LAST_DATE.get(), sent=sent, received=self.local())
        return result

    async def get(self, name: str) -> Read:
        result: Read = await self._timed(super().get, name)
        return result

    async def create(self, body: ReportJob) -> Read:
        result: Read = await self._timed(super().create, body)
        if result.obj is not None and self.cache is not None:
            self.cache.jobs[result.obj["metadata"]["name"]] = result.obj
        return result

    async def get_window(self, name: str) -> Read:
        result: Read = await self._timed(super().get_window, name)
        return result

    async def create_window(self, body: dict[str, Any]) -> dict[str, Any]:
        written: dict[str, Any] = await self._timed(super().create_window, body)
        if self.cache is not None:
            self.cache.written(None, written)
        return written

    async def replace_window(self, body: dict[str, Any]) -> dict[str, Any]:
        written: dict[str, Any] = await self._timed(super().replace_window, body)
        if self.cache is not None:
            self.cache.written(body["metadata"]["resourceVersion"], written)
        return written

    async def patch_window(
        self, name: str, patch: list[dict[str, Any]], *, based_on: str
    ) -> dict[str, Any]:
        written: dict[str, Any] = await self._timed(
            super().patch_window, name, patch, based_on=based_on
        )
        if self.cache is not None:
            self.cache.written(based_on, written)
        return written


CLIENT_ATTEMPTS = 1000


@dataclass
class World:
    """One run: a store whose every pause is decided by `rnd`; with `cached`, submissions
    also take the cached paths, with the gateway's clock and claim history."""

    rnd: random.Random
    crash_rate: float
    cached: bool = False
    clock: type[ServerClock] = ServerClock
    history: type[ClaimHistory] = ClaimHistory
    sweeps: bool = False
    legacy: bool = False
    """Half of the sweeps are an operator's of before the epochs: a replace carrying the
    resourceVersion listed, without the closed claims and without the epoch it cannot read
    (what an upgrade runs side by side with the new writers). It keeps the claims of jobs not
    accepted yet, as the operators of after the acceptance check do (docs/design.md,
    "Upgrades")."""
    deletes: bool = False
    """ReportJobs are deleted by hand at random moments."""
    checks_claims: bool = True
    """The operator takes a ReportJob on only if a read of its shard made now shows its claim
    naming it (reconcile.py); False: without that check."""
    instant_operator: bool = False
    """An operator that takes every ReportJob on as it is created, without the check (claims
    are pruned sooner: the hunts for broken stores find their runs faster)."""
    delays: Delays = IN_WINDOW
    attempts: int = 1000
    """How often a client tries before the run counts it as never answered."""
    store: FakeStore = field(init=False)
    cache: LaggingCache | None = field(init=False, default=None)
    sweep: WindowSweep = field(init=False)
    answers: list[Answer] = field(default_factory=list)
    mix: Counter[str] = field(default_factory=Counter)
    """Every attempt's outcome: 201, 200, crash (the gateway died), 503."""
    runs: Counter[str] = field(default_factory=Counter)
    """How often each job was taken on by the operator (its work started)."""
    deleted: set[str] = field(default_factory=set)
    """Jobs deleted by hand."""
    gone: set[str] = field(default_factory=set)
    """Deleted jobs whose finalizer was removed (their deletion done)."""
    last_sweep: float = 0.0
    """The server's time of the last sweep's list (at most: it is read before the list)."""
    problems: list[str] = field(default_factory=list)
    """Violations seen as they happen (a job taken on after its deletion was done, a client
    never answered)."""

    def __post_init__(self) -> None:
        self.store = ClockedStore(
            now=T0 + self.rnd.random(), pause=self.pause, accepts=self.instant_operator
        )
        self.sweep = WindowSweep(
            api=self.store, indexed=lambda: set(self.store.objects), accepted=self.known
        )
        if self.cached:
            assert isinstance(self.store, ClockedStore)
            offset = self.rnd.uniform(-1e6, 1e6)  # no clock synchronisation
            self.store.local_offset = offset
            clock = self.clock(monotonic=lambda: self.store.now + offset)
            self.cache = self.store.cache = LaggingCache(
                self.store, clock=clock, history=self.history
            )

    async def pause(self, point: str) -> None:
        for _ in range(self.rnd.randint(0, 3)):
            await asyncio.sleep(0)
        if point != "idle" or self.rnd.random() < 0.1:
            values, weights = zip(*self.delays, strict=True)
            self.store.now += self.rnd.choices(values, weights)[0]
        if self.cache is not None:
            self.cache.advance(self.rnd)
        task = asyncio.current_task()
        in_request = point != "idle" and task is not None and task.get_name() != "collector"
        if in_request and self.rnd.random() < self.crash_rate:
            raise Crash(point)

    async def client(self, object_id: str) -> None:
        """A user who retries on errors (with the same object id) until answered. With a crash
        rate of 0.2 at each of a submission's many steps, most attempts fail: enough of them
        that an answer is certain (50 were too few: hypothesis found a run that needed more)."""
        callback = self.rnd.choice(CALLBACKS)
        for _ in range(self.rnd.randint(0, 4)):
            await self.pause("idle")
        for _ in range(self.attempts):
            started = self.store.now
            try:
                outcome = await submit(
                    self.store,
                    object_id=object_id,
                    timeout_seconds=30,
                    window_seconds=W,
                    cache=self.cache,
                    callback_url=callback,
                )
            except Crash:
                self.mix["crash"] += 1
                continue
            except StoreUnavailable:
                self.mix["503"] += 1
                continue
            self.mix["201" if outcome.created else "200"] += 1
            name = outcome.job["metadata"]["name"]
            self.answers.append(Answer(object_id, started, self.store.now, name, outcome.created))
            if outcome.to_create is not None:  # the gateway's create after the 201
                with contextlib.suppress(Crash, StoreUnavailable):  # then left to completion
                    await create_job(self.store, outcome.to_create)
            return
        self.problems.append(f"a client of {object_id!r} was never answered")

    def known(self, name: str) -> bool:
        """In the operator's index, accepted."""
        job = self.store.objects.get(name)
        return job is not None and is_accepted(job)

    async def operate(self) -> None:
        """The operator's steps that the protocol relies on (reconcile.py): a ReportJob not
        taken on yet is checked against a read of its shard made now, then taken on (its work
        starts: counted) or deleted; a deleted one not taken on ends Cancelled; a deleted one,
        ended, whose claim the sweep saw gone loses its finalizer, and goes."""
        for name in list(self.store.objects):
            job = self.store.objects.get(name)
            if job is None or is_accepted(job):
                continue
            if is_deleting(job):
                job["status"] = {"phase": "Cancelled"}
                continue
            uid, claimed = job["metadata"]["uid"], True
            if self.checks_claims:
                try:
                    read = await self.store.get_window(place_of_job(name)[0])
                except Crash:  # the operator restarts; the next pass looks again
                    continue
                claimed = names_its_job(read.obj, job_name=name)
            job = self.store.objects.get(name)
            if job is None or job["metadata"]["uid"] != uid or is_accepted(job):
                continue
            if not claimed:
                delete_or_mark(self.store.objects, name)
                continue
            job["status"] = {"phase": "Pending"}
            self.runs[name] += 1
            if name in self.gone:
                self.problems.append(f"{name} was taken on after its deletion was done")

    def release(self) -> None:
        for name, job in list(self.store.objects.items()):
            if is_deleting(job) and is_accepted(job) and self.sweep.released(name):
                del self.store.objects[name]
                self.gone.add(name)

    async def operator(self, clients: list[asyncio.Task[None]]) -> None:
        while not all(task.done() for task in clients):
            await self.pause("idle")
            await self.operate()

    async def deleter(self) -> None:
        """Someone deletes ReportJobs by hand (kubectl delete rj), at random moments."""
        for _ in range(self.rnd.randint(1, 3) if self.deletes else 0):
            for _ in range(self.rnd.randint(1, 12)):
                await self.pause("idle")
            alive = sorted(name for name, job in self.store.objects.items() if not is_deleting(job))
            if alive:
                name = self.rnd.choice(alive)
                delete_or_mark(self.store.objects, name)
                self.deleted.add(name)

    async def collector(self, clients: list[asyncio.Task[None]]) -> None:
        """The operator's sweep of closed claims, now and then, while clients are busy (at
        least a few times when `sweeps` is set)."""
        for _ in range(self.rnd.randint(0, 4)):
            await self._sweep()
        while self.sweeps and not all(task.done() for task in clients):
            await self.pause("idle")
            await self._sweep()

    async def _sweep(self) -> None:
        if not (self.legacy and self.rnd.random() < 0.5):
            await self.sweep.run()
            self.release()
            return
        shards, now = await self.store.list_window_shards()
        for shard in shards:
            data = shard.get("data") or {}
            kept = {
                key: entry
                for key, entry in data.items()
                if (claim := claim_of(entry)) is not None
                and (claim.is_open(now=now) or awaits_its_job(claim, exists=self.known))
            }
            if kept != data:
                with contextlib.suppress(Conflict):
                    await self.store.replace_window_shard(body={**shard, "data": kept})

    async def complete(self) -> None:
        """After the clients: the operator's sweeps and steps, until a claim left without its
        job (a crash right after a 201) has been seen so at two sweeps in a row, completed,
        taken on and pruned, and deleted jobs have gone."""
        for _ in range(5):
            await self.operate()
            self.last_sweep = math.floor(self.store.now)
            await self.sweep.run()
            self.release()

    async def run(self, clients: list[str]) -> None:
        tasks = [
            asyncio.create_task(self.client(object_id), name=f"client-{i}")
            for i, object_id in enumerate(clients)
        ]
        await asyncio.gather(
            *tasks,
            asyncio.create_task(self.collector(tasks), name="collector"),
            asyncio.create_task(self.operator(tasks), name="operator"),
            asyncio.create_task(self.deleter(), name="deleter"),
        )
        await asyncio.create_task(self.complete(), name="collector")


def violations(world: World) -> list[str]:
    """What breaks the invariant in a finished run (empty when it holds)."""
    found: list[str] = list(world.problems)
    jobs = world.store.ever  # deleted ones too
    for object_id in OBJECTS:
        mine = sorted(
            (rj for rj in jobs.values() if rj["spec"]["objectId"] == object_id),
            key=accepted_unix,
        )
        for earlier, later in itertools.pairwise(mine):
            gap = accepted_unix(later) - accepted_unix(earlier)
            if gap < earlier["spec"]["windowSeconds"]:
                found.append(f"{object_id}: two jobs {gap} s apart")
    for answer in world.answers:
        job = jobs.get(answer.job_name)
        if job is None:
            found.append(f"answered with {answer.job_name}, which does not exist")
            continue
        accepted = accepted_unix(job)
        # The job's window [accepted, accepted + W) holds a server second seen in flight.
        if not (accepted <= answer.ended and accepted + W > math.floor(answer.started)):
            found.append(f"{answer.job_name} answered outside its window")
        if job["spec"]["objectId"] != answer.object_id:
            found.append(f"{answer.job_name} answered for another object")
    if any(name not in world.store.claims for name in jobs):
        found.append("a job that no claim ever named")
    winners = [a.job_name for a in world.answers if a.created]
    if len(winners) != len(set(winners)):
        found.append("two submissions were told they created the same job")
    if world.crash_rate == 0 and sorted(winners) != sorted(jobs):
        found.append("without crashes, every job is one submission's 201")
    runs = Counter(world.store.created) if world.instant_operator else world.runs
    found += [f"{name} was taken on {n} times" for name, n in runs.items() if n > 1]
    found += [
        f"{name} was never taken on, and nobody deleted it"
        for name in jobs
        if runs[name] == 0 and name not in world.deleted
    ]
    found += _closed_claims_left(world)
    return found


def _closed_claims_left(world: World) -> list[str]:
    """Claims closed at the end that the sweeps should have removed: their jobs were taken on
    (or deleted), and the last sweeps ran after."""
    left = []
    for name, shard in world.store.windows.items():
        for key, entry in (shard.get("data") or {}).items():
            claim = None if key == EPOCH_KEY else claim_of(entry)
            if claim is not None and not claim.is_open(now=world.last_sweep):
                left.append(f"closed claim {claim.job_name} left in {name}")
    return left


def simulate(
    seed: int,
    clients: list[str],
    crash_rate: float,
    store: type[FakeStore] = FakeStore,
    **cache: Any,
) -> World:
    world = World(rnd=random.Random(seed), crash_rate=crash_rate, **cache)
    if store is not FakeStore:
        world.store.__class__ = type(f"Clocked{store.__name__}", (ClockedStore, store), {})
    asyncio.run(world.run(clients))
    return world


CLIENTS = st.lists(st.sampled_from(OBJECTS), min_size=1, max_size=12)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    clients=CLIENTS,
    crash_rate=st.sampled_from([0.0, 0.0, 0.05, 0.2]),
    deletes=st.booleans(),
    delays=st.sampled_from([IN_WINDOW, SPANNING]),
)
def test_never_two_jobs_within_a_window(
    seed: int, clients: list[str], crash_rate: float, deletes: bool, delays: Delays
) -> None:
    world = simulate(seed, clients, crash_rate, FakeStore, deletes=deletes, delays=delays)
    assert violations(world) == []
    assert world.answers, "every client is answered"


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    clients=CLIENTS,
    crash_rate=st.sampled_from([0.0, 0.0, 0.05, 0.2]),
    sweeps=st.booleans(),
    legacy=st.booleans(),
    deletes=st.booleans(),
    delays=st.sampled_from([IN_WINDOW, SPANNING]),
)
def test_never_two_jobs_within_a_window_with_lagging_caches(
    seed: int,
    clients: list[str],
    crash_rate: float,
    sweeps: bool,
    legacy: bool,
    deletes: bool,
    delays: Delays,
) -> None:
    """The same, with the cached paths taken whenever they apply: caches any number of
    versions behind, relists that skip versions, a local clock with an arbitrary offset,
    (with `sweeps`) the operator's sweep running all along, and (with `legacy`) half of the
    sweeps an operator's of before the epochs (a replace that drops the epoch)."""
    world = simulate(
        seed,
        clients,
        crash_rate,
        cached=True,
        sweeps=sweeps,
        legacy=legacy,
        deletes=deletes,
        delays=delays,
    )
    assert violations(world) == []
    assert world.answers, "every client is answered"


async def _three_each(world: World, objects: list[str]) -> list[str]:
    async def client(object_id: str) -> list[str]:
        paths = []
        for _ in range(3):
            outcome = await submit(
                world.store,
                object_id=object_id,
                timeout_seconds=30,
                window_seconds=W,
                cache=world.cache,
            )
            paths.append(outcome.path.value)
        return paths

    answers = await asyncio.gather(*(client(object_id) for object_id in objects))
    return [path for paths in answers for path in paths]


def test_the_cached_paths_are_taken() -> None:
    """Not vacuous: over some runs, answers come from the cache and claims from cached shards."""
    taken: set[str] = set()
    for seed in range(200):
        world = World(rnd=random.Random(seed), crash_rate=0.0, cached=True)
        world.store.accepts = True  # no operator here: taken on as created
        taken.update(asyncio.run(_three_each(world, ["x", "y"])))
    assert {"cached", "cached_shard"} <= taken


def test_the_legacy_sweeps_drop_epochs_that_a_replace_sets_again() -> None:
    """Not vacuous: with `legacy`, some runs have shard versions without an epoch (a sweep of
    before dropped it), followed by a version of the same shard with one again (a new writer's
    replace)."""
    again = 0
    for seed in range(100):
        world = simulate(
            seed, [X, OBJECTS[2], X, OBJECTS[2]], 0.0, cached=True, sweeps=True, legacy=True
        )
        had_none: set[str] = set()
        for version in world.store.window_history:
            name, data = version["metadata"]["name"], version.get("data") or {}
            if EPOCH_KEY not in data:
                had_none.add(name)
            elif name in had_none:
                again += 1
                had_none.discard(name)
    assert again > 0


HUNT: dict[str, Any] = {"delays": SPANNING, "instant_operator": True}
"""The world in which the hunts for broken stores look: requests that span windows, and claims
pruned as soon as their job exists."""


class NoPreconditions(FakeStore):
    """A store that applies a patch without its tests: what the protocol relies on, taken away."""

    def _patched(self, current: dict[str, Any], patch: list[dict[str, Any]]) -> dict[str, Any]:
        return apply_json_patch(current, patch, tests=False)


class NoEpoch(FakeStore):
    """A store that drops the epoch's operations: a removal no longer changes what a stale
    "absent" read tests, so a claim written on a read from before the removal succeeds after it,
    with a claim time from before (ABA)."""

    def _patched(self, current: dict[str, Any], patch: list[dict[str, Any]]) -> dict[str, Any]:
        kept = [op for op in patch if op["path"] != f"/data/{EPOCH_KEY}"]
        return apply_json_patch(current, kept)


class DeletesEmptyShards(FakeStore):
    """Garbage collection by deletion: a shard left without claims is deleted. A create that
    read "absent" before the deletion then succeeds with a claim time from before it (ABA)."""

    async def patch_window_shard(self, *, name: str, patch: list[dict[str, Any]]) -> None:
        await super().patch_window_shard(name=name, patch=patch)
        if set(self.windows[name].get("data") or {}) <= {EPOCH_KEY}:
            del self.windows[name]


class UpperBoundWithoutTheRoundTrip(ServerClock):
    """Forgets that the Date was stamped somewhere in the round trip, not on arrival."""

    def at(self, local: float) -> ServerNow | None:
        bounds = super().at(local)
        if bounds is None or self._sample is None:
            return bounds
        return ServerNow(bounds.earliest, bounds.latest - self._sample.rtt)


def test_the_invariant_check_catches_broken_cached_paths() -> None:
    """The check sees a broken cached path: with an upper bound of the server's time that
    forgets the round trip (the Date was stamped somewhere in it), hypothesis finds a run with
    an answer outside its window. (The second of the Date's truncation and the history of
    removals matter in narrower cases, which test_cached_submission.py builds step by step.)"""
    for broken in ({"clock": UpperBoundWithoutTheRoundTrip},):
        found = find(
            st.tuples(st.integers(0, 2**32), CLIENTS),
            lambda case, broken=broken: bool(
                violations(simulate(case[0], case[1], 0.0, cached=True, delays=SPANNING, **broken))
            ),
            settings=settings(max_examples=3000, deadline=None, database=None),
        )
        assert violations(simulate(found[0], found[1], 0.0, cached=True, delays=SPANNING, **broken))


def test_the_invariant_check_catches_broken_stores() -> None:
    """The property can fail: without the tests of the patches, without the epoch, or with
    shards deleted and created again, hypothesis finds a run with two jobs in one window (with
    the sweep running all along: it is what removes claims)."""
    for broken in (NoPreconditions, NoEpoch, DeletesEmptyShards):
        found = find(
            st.tuples(st.integers(0, 2**32), CLIENTS),
            lambda case, broken=broken: bool(
                violations(simulate(case[0], case[1], 0.0, broken, sweeps=True, **HUNT))
            ),
            settings=settings(max_examples=5000, deadline=None, database=None),
        )
        assert violations(simulate(found[0], found[1], 0.0, broken, sweeps=True, **HUNT))


class NeverCompletes(FakeStore):
    """An operator that never creates the job of a claim found without it."""

    async def create_reportjob(self, *, body: dict[str, Any]) -> dict[str, Any]:
        raise Conflict("pretends it exists")


def test_the_check_sees_a_201_whose_job_is_lost() -> None:
    """Not vacuous: a crash between a 201 and its create loses the job unless someone
    completes the claim; without the operator's completion, hypothesis finds such a run."""
    found = find(
        st.tuples(st.integers(0, 2**32), CLIENTS),
        lambda case: any(
            "does not exist" in v
            for v in violations(simulate(case[0], case[1], 0.2, NeverCompletes, delays=SPANNING))
        ),
        settings=settings(max_examples=3000, deadline=None, database=None),
    )
    assert violations(simulate(found[0], found[1], 0.2, NeverCompletes, delays=SPANNING))


def test_the_answers_mix_creates_dedups_and_crashes_and_deletes_happen() -> None:
    """Not vacuous: over fixed runs, a good share of the answers are deduplicated 200s (the
    submission landed inside an open window), others are 201s, and crashes and 503s happen;
    deletions by hand happen, some before the job was taken on, and some deleted jobs go (their
    claim gone); jobs are created again after their deletion, and refused."""
    mix: Counter[str] = Counter()
    deleted = gone = created_again = 0
    for seed in range(150):
        rnd = random.Random(seed)
        clients = [rnd.choice(OBJECTS) for _ in range(rnd.randint(1, 12))]
        world = simulate(
            seed, clients, rnd.choice([0.0, 0.05, 0.2]), cached=True, sweeps=True, deletes=True
        )
        assert violations(world) == []
        mix.update(world.mix)
        deleted += len(world.deleted)
        gone += len(world.gone)
        created_again += len(world.store.created) - len(set(world.store.created))
    answers = mix["201"] + mix["200"]
    print(
        f"answers: {mix['201']} x 201, {mix['200']} x 200 ({mix['200'] / answers:.0%}); "
        f"failed attempts: {mix['crash']} crashes, {mix['503']} x 503; deleted by hand: "
        f"{deleted}, gone: {gone}, created again (then deleted unrun): {created_again}"
    )
    assert mix["200"] >= answers / 3
    assert mix["201"] >= answers / 5
    assert mix["crash"] > 0
    assert deleted > 0
    assert gone > 0


@contextlib.contextmanager
def _entries_of_before() -> Iterator[None]:
    """The claims as they were written before this fix: `&`, `<`, `>` and non-ASCII raw (what
    a server comparing decoded values would accept), and always tested by a patch."""
    canonical = Claim.to_entry

    def raw(claim: Claim) -> str:
        fields = json.loads(canonical(claim))
        return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)

    with (
        unittest.mock.patch.object(Claim, "to_entry", raw),
        unittest.mock.patch.object(window, "is_canonical", return_value=True),
    ):
        yield


def test_the_check_catches_entries_a_json_patch_cannot_test() -> None:
    """The bug of before, found by the property against the fake that compares as the API
    server does (a closed claim of such an object can never be replaced nor pruned), and not
    against the fake as it was (comparing decoded values)."""
    runs = [(seed, [OBJECTS[1]] * 3) for seed in range(30)]
    with _entries_of_before():
        seen = [
            violations(simulate(s, c, 0.0, FakeStore, sweeps=True, attempts=20, delays=SPANNING))
            for s, c in runs
        ]
        hidden = [
            violations(simulate(s, c, 0.0, DecodedTests, sweeps=True, attempts=20, delays=SPANNING))
            for s, c in runs
        ]
    assert any(seen)
    assert not any(hidden)
    print(next(found for found in seen if found)[:2])


class DecodedTests(FakeStore):
    """The fake as it was: a JSON patch's `test` compares decoded values."""

    def _patched(self, current: dict[str, Any], patch: list[dict[str, Any]]) -> dict[str, Any]:
        return apply_json_patch(current, patch, equal=decoded_equal)


class ReplacesWithoutResourceVersion(FakeStore):
    """A writer whose replace carries no resourceVersion: the API server applies it whatever
    changed since the read (as a ConfigMap allows)."""

    async def replace_window(self, body: dict[str, Any]) -> dict[str, Any]:
        metadata = {k: v for k, v in body["metadata"].items() if k != "resourceVersion"}
        return await super().replace_window({**body, "metadata": metadata})


def _hunt(world: dict[str, Any], *, seen: Callable[[list[str]], bool] = bool) -> list[str]:
    """Runs of `simulate(seed, clients, 0.0, **world)` until one has violations that `seen`
    accepts (hypothesis's `find`); that run's violations, run again."""
    found = find(
        st.tuples(st.integers(0, 2**32), CLIENTS),
        lambda case: seen(violations(simulate(case[0], case[1], 0.0, **world))),
        settings=settings(max_examples=5000, deadline=None, database=None),
    )
    return violations(simulate(found[0], found[1], 0.0, **world))


def test_the_check_catches_a_replace_without_its_resource_version() -> None:
    """Replaces happen on shards without an epoch (the legacy sweeps drop it): without the
    resourceVersion, one overwrites a claim written since its read."""
    world = {"store": ReplacesWithoutResourceVersion, "sweeps": True, "legacy": True, **HUNT}
    assert _hunt(world)


def test_the_check_catches_an_operator_that_takes_on_a_job_created_again() -> None:
    """Without the check that a ReportJob's claim names it (on a read made after its create),
    a job deleted by hand and created again from a claim read before its deletion runs again."""
    world = {
        "cached": True,
        "sweeps": True,
        "deletes": True,
        "checks_claims": False,
        "delays": SPANNING,
    }
    found = _hunt(world, seen=lambda problems: any("taken on" in p for p in problems))
    assert any("taken on" in problem for problem in found)
