"""Which shards a replica renews, takes and lets go: the fair share (pure).

Each replica renews a member Lease of its own; the members are the replicas whose member Lease
is live (not expired, as observed locally), this one included. The fair share of M members
in K shards is K // M, one more for the first K % M members in the order of their names (so
the shares add up to K: 16 over 3 is 6, 5, 5). A replica holding more lets go of the excess
(released at once, so another takes it on its next round); one holding fewer takes free or
expired shards up to its share. Preferences
are by rendezvous hashing of (identity, shard), so who prefers which shard is stable and two
replicas rarely reach for the same free one.

A shard whose Lease has not changed for a lease duration (`orphaned_after`: its holder died, or
nobody took it after its release) is taken by whoever sees it, over its share or not, so no shard
waits for the count of members to catch up (a dead replica is counted until its member Lease
expires, and a replica that just started must watch a Lease for a whole duration before it may
take it). The next rounds shed the excess to the replicas under their share.
"""

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reportjobs_operator.leases import holder_of, may_take, spec_of


@dataclass(frozen=True, slots=True)
class Seen:
    """One Lease as this replica saw it: its body (None: it does not exist) and how long its
    record has been unchanged."""

    lease: Mapping[str, Any] | None
    unchanged_for: float = 0.0


@dataclass(frozen=True, slots=True)
class Plan:
    renew: frozenset[int]
    take: tuple[int, ...]
    """In order of preference."""
    release: frozenset[int]


def _preference(identity: str, shard: int) -> bytes:
    return hashlib.sha256(f"{identity}/{shard}".encode()).digest()


def live_members(members: Iterable[Seen], *, identity: str) -> list[str]:
    """Replicas whose member Lease is held and not expired, this one always counted, by name."""
    others = {
        holder
        for seen in members
        if (holder := holder_of(seen.lease)) is not None
        and holder != identity
        and not may_take(spec_of(seen.lease), identity=identity, unchanged_for=seen.unchanged_for)
    }
    return sorted(others | {identity})


def fair_share(*, shards: int, members: list[str], identity: str) -> int:
    count = max(1, len(members))
    rank = members.index(identity) if identity in members else count - 1
    return shards // count + (1 if rank < shards % count else 0)


def plan(
    *,
    identity: str,
    shards: Mapping[int, Seen],
    members: list[str],
    orphaned_after: float = math.inf,
) -> Plan:
    """What to do with each of the K shards (`shards` maps every shard to its Lease as seen)."""
    share = fair_share(shards=len(shards), members=members, identity=identity)
    mine = [shard for shard, seen in shards.items() if holder_of(seen.lease) == identity]
    mine.sort(key=lambda shard: _preference(identity, shard), reverse=True)
    keep, release = mine[:share], mine[share:]
    free = [
        shard
        for shard, seen in shards.items()
        if shard not in mine
        and (
            seen.lease is None
            or may_take(spec_of(seen.lease), identity=identity, unchanged_for=seen.unchanged_for)
        )
    ]
    free.sort(key=lambda shard: _preference(identity, shard), reverse=True)
    take = free[: max(0, share - len(keep))]
    take += [
        shard
        for shard in free[len(take) :]
        if shards[shard].lease is not None and shards[shard].unchanged_for >= orphaned_after
    ]
    return Plan(renew=frozenset(keep), take=tuple(take), release=frozenset(release))
