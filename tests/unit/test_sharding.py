"""Shards: the bucket label, the fair share, and Lease ownership with fencing (sharding.py)
against a fake Lease API and one fake monotonic clock shared by every replica."""

import asyncio
import hashlib
from datetime import UTC, datetime

import pytest

from reportjobs_model.shards import (
    BUCKETS,
    bucket_of,
    buckets_of,
    selector_of,
    shard_of,
    shard_of_labels,
)
from reportjobs_operator.leases import Fence, LeaseTerms
from reportjobs_operator.membership import Seen, fair_share, live_members, plan
from reportjobs_operator.sharding import ShardLeases, ShardOwner
from tests.unit.fakes import FakeLeaseApi

K = 16
DURATION = 15
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_the_bucket_is_the_first_byte_of_the_names_sha256() -> None:
    name = "rj-0123456789abcdef01234567-1764590400"
    assert bucket_of(name) == hashlib.sha256(name.encode()).digest()[0]
    assert shard_of(name, shards=K) == bucket_of(name) % K


@pytest.mark.parametrize("shards", [1, 3, 10, 16, 256])
def test_every_bucket_is_in_exactly_one_shard(shards: int) -> None:
    owners = [s for b in range(BUCKETS) for s in range(shards) if b in buckets_of(s, shards=shards)]
    assert len(owners) == BUCKETS
    sizes = {len(buckets_of(s, shards=shards)) for s in range(shards)}
    assert max(sizes) - min(sizes) <= 1


def test_the_selector_names_the_shards_buckets() -> None:
    assert selector_of(3, shards=K).startswith("reportjobs.io/bucket in (3,19,35,")
    assert shard_of_labels({"reportjobs.io/bucket": "35"}, shards=K) == 3
    assert shard_of_labels({"reportjobs.io/bucket": "x"}, shards=K) is None
    assert shard_of_labels({"reportjobs.io/bucket": "256"}, shards=K) is None
    assert shard_of_labels(None, shards=K) is None


def test_the_fair_shares_add_up_to_the_shards() -> None:
    for count in (1, 2, 3, 5, 16, 17):
        members = [f"m{i:02d}" for i in range(count)]
        shares = [fair_share(shards=K, members=members, identity=m) for m in members]
        assert sum(shares) == K
        assert max(shares) - min(shares) <= 1
    assert [fair_share(shards=K, members=["a", "b", "c"], identity=m) for m in "abc"] == [6, 5, 5]


def _lease(holder: str | None, duration: int = DURATION) -> dict[str, object]:
    spec: dict[str, object] = {"leaseDurationSeconds": duration}
    if holder:
        spec["holderIdentity"] = holder
    return {"metadata": {"name": "x"}, "spec": spec}


def test_a_replica_over_its_share_lets_go_of_the_excess_and_takes_nothing() -> None:
    shards = {s: Seen(_lease("a")) for s in range(K)}
    decided = plan(identity="a", shards=shards, members=["a", "b", "c"])
    assert len(decided.renew) == 6
    assert len(decided.release) == 10
    assert decided.take == ()


def test_a_replica_takes_free_and_expired_shards_up_to_its_share_never_live_ones() -> None:
    shards = {s: Seen(_lease("b")) for s in range(8)}  # live, held by b
    shards |= {s: Seen(None) for s in range(8, 12)}  # never created
    shards |= {s: Seen(_lease(None)) for s in range(12, 14)}  # released
    shards |= {s: Seen(_lease("c"), unchanged_for=DURATION) for s in range(14, 16)}  # expired
    decided = plan(identity="a", shards=shards, members=["a", "b"])
    assert set(decided.take) == set(range(8, 16))
    assert decided.renew == frozenset()
    seen = [Seen(_lease("b")), Seen(_lease("c"), DURATION)]
    assert live_members(seen, identity="a") == ["a", "b"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Work:
    """Records which shards run; checks that a shard is started only when stopped before."""

    def __init__(self) -> None:
        self.running: dict[int, Fence] = {}
        self.started: list[int] = []

    def start(self, shard: int, fence: Fence) -> None:
        assert shard not in self.running
        self.running[shard] = fence
        self.started.append(shard)

    async def stop(self, shard: int) -> None:
        self.running.pop(shard, None)


class Cluster:
    """Replicas sharing one fake Lease API and one clock; a round every retry period each."""

    def __init__(self) -> None:
        self.api = FakeLeaseApi()
        self.clock = Clock()
        self.replicas: dict[str, tuple[ShardOwner, Work]] = {}
        self.paused: set[str] = set()
        self.history: list[tuple[float, dict[int, set[str]]]] = []
        self.terms = LeaseTerms(identity="-", duration_seconds=DURATION)

    def join(self, identity: str, work: Work | None = None) -> ShardOwner:
        work = work or Work()
        owner = ShardOwner(
            api=self.api,
            leases=ShardLeases(namespace="ns", prefix="op", shards=K),
            terms=LeaseTerms(identity=identity, duration_seconds=DURATION),
            work=work,
            monotonic=self.clock,
            clock=lambda: NOW,
        )
        self.replicas[identity] = (owner, work)
        return owner

    def acting(self) -> dict[int, set[str]]:
        """For each shard, the replicas whose fence lets them write to it now."""
        acting: dict[int, set[str]] = {s: set() for s in range(K)}
        for identity, (_, work) in self.replicas.items():
            for shard, fence in work.running.items():
                if fence.holds():
                    acting[shard].add(identity)
        return acting

    async def run(self, seconds: float) -> None:
        """Advance time in steps of 0.5 s; every replica not paused runs its rounds; at every
        step no shard has two replicas that may act on it."""
        period = self.terms.retry_period
        end = self.clock.now + seconds
        due = dict.fromkeys(self.replicas, self.clock.now)
        while self.clock.now < end:
            for identity, (owner, _) in list(self.replicas.items()):
                if identity in self.paused or due.setdefault(identity, 0) > self.clock.now:
                    continue
                await owner.step()
                due[identity] = self.clock.now + period
            acting = self.acting()
            assert all(len(ids) <= 1 for ids in acting.values()), acting
            self.history.append((self.clock.now, acting))
            self.clock.now += 0.5

    def owned_after(self, shard: int, moment: float) -> float | None:
        """Seconds from `moment` until some replica could act on the shard."""
        return next(
            (t - moment for t, acting in self.history if t >= moment and acting[shard]), None
        )

    def held(self, identity: str) -> set[int]:
        _, work = self.replicas[identity]
        return {shard for shard, fence in work.running.items() if fence.holds()}


async def test_two_replicas_split_the_shards_evenly() -> None:
    cluster = Cluster()
    cluster.join("a")
    await cluster.run(10)
    assert cluster.held("a") == set(range(K))
    cluster.join("b")
    await cluster.run(20)
    assert len(cluster.held("a")) == len(cluster.held("b")) == 8
    assert cluster.held("a") | cluster.held("b") == set(range(K))


async def test_a_third_replica_takes_a_fair_share_within_a_lease_duration() -> None:
    cluster = Cluster()
    for identity in "ab":
        cluster.join(identity)
    await cluster.run(20)
    cluster.join("c")
    await cluster.run(DURATION)
    assert [len(cluster.held(identity)) for identity in "abc"] == [6, 5, 5]


async def test_a_paused_replica_stops_acting_before_another_may_take_its_shards() -> None:
    """SIGSTOP: its rounds stop; its fences run out renew_deadline after its last renewal was
    sent, before the Leases expire for the others (Cluster.run checks this at every step)."""
    cluster = Cluster()
    for identity in "ab":
        cluster.join(identity)
    await cluster.run(20)
    before = cluster.held("a")
    assert len(before) == 8
    cluster.paused.add("a")
    await cluster.run(DURATION * 2 / 3 + cluster.terms.retry_period)
    assert cluster.held("a") == set()  # its fences ran out while paused
    assert cluster.held("b") & before == set()  # the Leases have not expired yet
    await cluster.run(DURATION + 2 * cluster.terms.retry_period)
    assert cluster.held("b") == set(range(K))
    cluster.paused.discard("a")  # resumed: it learns it lost them, then gets a share back
    await cluster.run(30)
    assert len(cluster.held("a")) == len(cluster.held("b")) == 8


async def test_a_replica_that_cannot_renew_stops_before_its_leases_expire() -> None:
    cluster = Cluster()
    cluster.join("a")
    await cluster.run(10)
    cluster.api.failing = True
    await cluster.run(DURATION * 2 / 3 + 1)
    assert cluster.held("a") == set()


async def test_a_dead_replicas_shards_are_taken_soon_though_its_replacement_joins() -> None:
    cluster = Cluster()
    for identity in "abc":
        cluster.join(identity)
    await cluster.run(20)
    dead, killed = cluster.held("a"), cluster.clock.now
    del cluster.replicas["a"]  # SIGKILL: no release
    await cluster.run(12)
    cluster.join("d")  # its replacement: it must watch the Leases a whole duration itself
    await cluster.run(DURATION)
    # Its last renewal was at most a round before; the others see it expire a duration later.
    bound = DURATION + 2 * cluster.terms.retry_period
    taken = {shard: cluster.owned_after(shard, killed) for shard in dead}
    assert all(t is not None and t <= bound for t in taken.values()), taken
    await cluster.run(30)
    assert sorted(len(cluster.held(identity)) for identity in "bcd") == [5, 5, 6]


async def test_a_stopping_replica_hands_its_shards_over_at_once() -> None:
    cluster = Cluster()
    for identity in "ab":
        cluster.join(identity)
    await cluster.run(20)
    owner, _ = cluster.replicas["a"]
    await owner.release_all()
    del cluster.replicas["a"]
    await cluster.run(2 * cluster.terms.retry_period)  # well within one lease duration
    assert cluster.held("b") == set(range(K))
    assert not any(name.startswith("op-member-a") for name in cluster.api.leases)


def test_an_expired_shard_is_taken_over_the_share() -> None:
    """A dead replica is still counted until its member Lease expires; its shards do not wait
    for the count to catch up."""
    shards = {s: Seen(_lease("a")) for s in range(8)}
    shards |= {s: Seen(_lease("b")) for s in range(8, 13)}  # live
    shards |= {s: Seen(_lease("c"), unchanged_for=DURATION) for s in range(13, 16)}  # expired
    decided = plan(identity="a", shards=shards, members=["a", "b"], orphaned_after=DURATION)
    assert set(decided.take) == {13, 14, 15}
    assert len(decided.renew) == 8


class SlowStops(Work):
    """A stop waits until every shard of the replica is being stopped: a replica that stops
    its shards one after another never finishes."""

    def __init__(self, *, shards: int) -> None:
        super().__init__()
        self.stopping: set[int] = set()
        self.all_stopping = asyncio.Event()
        self.shards = shards

    async def stop(self, shard: int) -> None:
        self.stopping.add(shard)
        if len(self.stopping) == self.shards:
            self.all_stopping.set()
        await self.all_stopping.wait()
        await super().stop(shard)


async def test_a_stopping_replica_stops_and_releases_its_shards_all_at_once() -> None:
    """A shard's stop waits for its work (up to a grace period); one after another, the last
    shard of a rolling update would wait for all the others'."""
    cluster, slow = Cluster(), SlowStops(shards=K)
    owner = cluster.join("a", slow)
    await cluster.run(10)
    assert owner.held == list(range(K))
    await asyncio.wait_for(owner.release_all(), timeout=5)
    assert slow.stopping == set(range(K))
    assert owner.held == []
