"""Shard ownership: one Lease per shard, spread over the live replicas (active/active).

Every round (LeaseTerms.retry_period) a replica LISTs the Leases of its group (one request),
renews its member Lease, then applies membership.plan: renew the shards it keeps, let go of
those over its fair share, take free or expired ones up to it. A shard's work starts once its
Lease is written and stops (its Fence revoked) before the Lease is let go; a shard whose
renewals fail stops by itself when its Fence runs out, which is before another replica may take
it (leases.py). On stop every shard is stopped and its Lease released, so a rolling update hands
over at once. The argument is in docs/design.md (fencing).
"""

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from reportjobs_model.timestamps import utc_now
from reportjobs_operator.leases import (
    Fence,
    LeaseTerms,
    Obj,
    Observations,
    holder_of,
    lease_body,
    next_spec,
    released_spec,
)
from reportjobs_operator.membership import Plan, Seen, live_members, plan
from reportjobs_operator.metrics import REBALANCES, SHARDS_HELD, swallowed
from reportjobs_operator.ports import Conflict, LeaseApi

log = logging.getLogger(__name__)

GROUP_LABEL = "reportjobs.io/lease-group"
ROLE_LABEL = "reportjobs.io/lease-role"
MEMBER_GARBAGE_DURATIONS = 4
"""A member Lease unchanged for this many lease durations belongs to a replica long gone."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ShardLeases:
    namespace: str
    prefix: str
    """The Lease names' prefix (the chart's reportjobs.operator.leaseName)."""
    shards: int

    def shard_lease(self, shard: int) -> str:
        return f"{self.prefix}-shard-{shard:02d}"

    def member_lease(self, identity: str) -> str:
        return f"{self.prefix}-member-{identity}"

    @property
    def selector(self) -> str:
        return f"{GROUP_LABEL}={self.prefix}"

    def labels(self, role: str) -> dict[str, str]:
        return {GROUP_LABEL: self.prefix, ROLE_LABEL: role}


class ShardWork(Protocol):
    """What runs a shard's work (controller.Replica)."""

    def start(self, shard: int, fence: Fence) -> None: ...

    async def stop(self, shard: int) -> None:
        """Returns once the shard's work has ended."""
        ...


async def wait_for_flag(flag: asyncio.Event, seconds: float) -> bool:
    """Wait up to `seconds` for the flag; whether it is set."""
    try:
        await asyncio.wait_for(flag.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


class ShardOwner:
    def __init__(
        self,
        *,
        api: LeaseApi,
        leases: ShardLeases,
        terms: LeaseTerms,
        work: ShardWork,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._api = api
        self._leases = leases
        self._terms = terms
        self._work = work
        self._monotonic = monotonic
        self._clock = clock
        self._observations = Observations(monotonic=monotonic)
        self._held: dict[int, Fence] = {}
        self._bodies: dict[str, Obj] = {}
        self.members: list[str] = [terms.identity]

    @property
    def held(self) -> list[int]:
        return sorted(self._held)

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds until `stop` is set; then every shard is stopped and released."""
        try:
            while not stop.is_set():
                await self.step()
                await wait_for_flag(stop, self._terms.retry_period)
        finally:
            await self.release_all()

    async def step(self) -> None:
        """One round; then whatever could not be renewed in time stops."""
        try:
            await self.round()
        except Exception:  # noqa: BLE001 (swallowed logs it)
            swallowed(log, "a round of shard leases failed", where="lease_round")
        await self._drop_expired()

    async def round(self) -> Plan:
        leases = await self._api.list_leases(label_selector=self._leases.selector)
        by_name = {str(lease["metadata"]["name"]): lease for lease in leases}
        self._observations.forget_except(set(by_name))
        self._bodies = dict(by_name)
        seen = {
            name: Seen(lease, self._observations.observe(lease)) for name, lease in by_name.items()
        }
        identity = self._terms.identity
        member = self._leases.member_lease(identity)
        await self._write(member, role="member")
        members = [s for name, s in seen.items() if _role(s.lease) == "member" and name != member]
        self.members = live_members(members, identity=identity)
        shards = {
            shard: seen.get(self._leases.shard_lease(shard), Seen(None))
            for shard in range(self._leases.shards)
        }
        for shard in list(self._held):
            if holder_of(shards[shard].lease) != identity:
                await self._stop(shard, change="lost")
        decided = plan(
            identity=identity,
            shards=shards,
            members=self.members,
            orphaned_after=self._terms.duration_seconds,
        )
        await asyncio.gather(*(self._let_go(shard) for shard in sorted(decided.release)))
        writes = [self._hold(shard) for shard in (*sorted(decided.renew), *decided.take)]
        await asyncio.gather(*writes)
        await self._collect_garbage(members)
        SHARDS_HELD.set(len(self._held))
        return decided

    async def _hold(self, shard: int) -> None:
        """Renew or take the shard's Lease; start its work when it is newly ours."""
        fence = self._held.get(shard) or Fence(terms=self._terms, monotonic=self._monotonic)
        sent_at = await self._write(self._leases.shard_lease(shard), role="shard")
        if sent_at is None:
            return
        fence.renewed(sent_at=sent_at)
        if shard not in self._held:
            self._held[shard] = fence
            log.info("acquired shard %d as %s", shard, self._terms.identity)
            REBALANCES.labels("acquired").inc()
            self._work.start(shard, fence)

    async def _write(self, name: str, *, role: str) -> float | None:
        """Make this replica the holder; the monotonic time the write was sent, or None."""
        previous = self._bodies.get(name)
        spec = next_spec(_spec(previous), terms=self._terms, now=self._clock())
        sent_at = self._monotonic()
        try:
            if previous is None:
                body = lease_body(
                    name=name,
                    namespace=self._leases.namespace,
                    labels=self._leases.labels(role),
                    spec=spec,
                )
                written = await self._api.create_lease(body=body)
            else:
                written = await self._api.replace_lease(body={**previous, "spec": spec})
        except Conflict:
            return None
        except Exception:  # noqa: BLE001 (swallowed logs it)
            swallowed(log, "writing lease %s failed", name, where="lease_write")
            return None
        self._bodies[name] = written
        self._observations.observe(written)
        return sent_at

    async def _stop(self, shard: int, *, change: str) -> None:
        fence = self._held.pop(shard)
        fence.revoke()
        await self._work.stop(shard)
        log.info("shard %d: %s by %s", shard, change, self._terms.identity)
        REBALANCES.labels(change).inc()
        SHARDS_HELD.set(len(self._held))

    async def _let_go(self, shard: int) -> None:
        """Stop the shard's work, then release its Lease for another replica to take now."""
        if shard in self._held:
            await self._stop(shard, change="released")
        name = self._leases.shard_lease(shard)
        previous = self._bodies.get(name)
        if previous is None or holder_of(previous) != self._terms.identity:
            return
        spec = released_spec(previous.get("spec") or {}, terms=self._terms, now=self._clock())
        try:
            self._bodies[name] = await self._api.replace_lease(body={**previous, "spec": spec})
        except Exception:  # noqa: BLE001 (swallowed logs it)
            # it expires instead: taken a lease duration later
            swallowed(log, "releasing lease %s failed", name, where="lease_release")

    async def _drop_expired(self) -> None:
        """A shard whose renewals failed for the renew deadline: its Fence has run out."""
        for shard, fence in list(self._held.items()):
            if not fence.holds():
                log.error("shard %d: no renewal for %.0f s", shard, self._terms.renew_deadline)
                await self._stop(shard, change="lost")

    async def _collect_garbage(self, members: list[Seen]) -> None:
        limit = MEMBER_GARBAGE_DURATIONS * self._terms.duration_seconds
        for seen in members:
            if seen.lease is not None and seen.unchanged_for >= limit:
                metadata = seen.lease["metadata"]
                try:
                    await self._api.delete_lease(name=metadata["name"], uid=metadata["uid"])
                except Exception:  # noqa: BLE001 (swallowed logs it)
                    # tried again next round
                    swallowed(
                        log,
                        "deleting the member lease %s of a replica long gone failed",
                        metadata["name"],
                        where="lease_garbage",
                    )

    async def release_all(self) -> None:
        """Stop every shard and release its Lease (all at once, so that a rolling update hands
        each over in one round); delete the member Lease."""
        await asyncio.gather(*(self._let_go(shard) for shard in list(self._held)))
        member = self._bodies.get(self._leases.member_lease(self._terms.identity))
        if member is not None:
            metadata = member["metadata"]
            try:
                await self._api.delete_lease(name=metadata["name"], uid=metadata["uid"])
            except Exception:  # noqa: BLE001 (swallowed logs it)
                # it expires, and another replica's round deletes it
                swallowed(
                    log,
                    "deleting this replica's member lease %s failed",
                    metadata["name"],
                    where="member_lease_delete",
                )


def _spec(lease: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return None if lease is None else (lease.get("spec") or {})


def _role(lease: Mapping[str, Any] | None) -> str | None:
    return ((lease or {}).get("metadata", {}).get("labels") or {}).get(ROLE_LABEL)
