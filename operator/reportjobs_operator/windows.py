"""The sweep of the gateway's window shards: claims completed, closed claims pruned.

A claim in a shard is the promise of its job: the gateway answers 201 once the claim is
written, and creates the ReportJob right after. Each resync, one LIST of the shards (a read from
etcd, not from a cache), then:

- a claim whose ReportJob the index does not hold, and did not hold at the previous sweep
  either, gets its ReportJob, created from the claim (the same name and spec whoever creates
  it; 409: it exists): the gateway that won the claim died before creating it;
- a claim that is closed at the server's time of the list (its Date) and whose ReportJob the
  index holds, accepted (reconcile.py's claim check), is pruned, by a JSON patch that tests the
  listed entries it removes and the shard's epoch, and gives the shard a new epoch
  (`window.removal_write`; a replace carrying the resourceVersion listed when the shard has no
  epoch or holds entries that are not canonical, tried once more on a fresh read if it loses);
  refused: the shard changed under it, and the next sweep tries again;
- a ReportJob that was in the index before the list was sent and that no listed claim names is
  *released*: its claim is gone for good (a claim is written before its ReportJob exists, and a
  removed claim never comes back, since every write carries the resourceVersion it read or
  tests the epoch it read, and every removal changes the epoch), so retention may delete it.
  Retention waits for that, because a claim without its ReportJob is completed: deleting the
  job of a claim still present would run it again.
"""

import logging
from collections.abc import Callable, Set
from dataclasses import dataclass

from reportjobs_model.reportjob import build_reportjob
from reportjobs_model.window import ShardWrite, claim_of, prunable, removal_write
from reportjobs_operator.ports import Conflict, Obj, WindowApi

log = logging.getLogger(__name__)


def pruning_write(shard: Obj, *, now: float, exists: Callable[[str], bool]) -> ShardWrite | None:
    """The write that removes the shard's closed claims whose job exists and is accepted
    (`exists`); None when none goes."""
    keys = prunable(shard.get("data") or {}, now=now, exists=exists)
    return removal_write(shard, keys=keys) if keys else None


@dataclass(frozen=True, slots=True)
class Swept:
    pruned: int
    """Shards written without their closed claims."""
    lost: int
    """Pruning writes the API server refused (the shard changed since the list)."""
    completed: int
    """ReportJobs created from claims found without them."""


class WindowSweep:
    """One `run()` per resync; `released(name)` tells retention a ReportJob's claim is gone.

    `indexed()` gives the names of the ReportJobs in the indexes of the shards this replica
    holds, at the moment; `accepted(name)` whether the one of that name is accepted (its
    operator checked that its claim names it, reconcile.py: until then its claim stays);
    `owns(name)` whether it acts on that name now (a claim of another replica's shard is left to
    it, and is asked again right before a create is sent)."""

    def __init__(
        self,
        *,
        api: WindowApi,
        indexed: Callable[[], Set[str]],
        accepted: Callable[[str], bool],
        owns: Callable[[str], bool] = lambda name: True,
    ) -> None:
        self._api = api
        self._indexed = indexed
        self._accepted = accepted
        self._owns = owns
        self._missing: set[str] = set()
        self._released: Set[str] = frozenset()

    def released(self, name: str) -> bool:
        return name in self._released

    async def run(self) -> Swept:
        before = set(self._indexed())
        shards, now = await self._api.list_window_shards()
        indexed = self._indexed()
        claimed: set[str] = set()
        missing: set[str] = set()
        completed = replaced = lost = 0
        for shard in shards:
            for entry in (shard.get("data") or {}).values():
                claim = claim_of(entry)
                if claim is None:
                    continue
                claimed.add(claim.job_name)
                if claim.object_id is None or claim.job_name in indexed:
                    continue
                if not self._owns(claim.job_name):
                    continue
                missing.add(claim.job_name)
                if claim.job_name in self._missing:
                    body = build_reportjob(object_id=claim.object_id, claim=claim)
                    completed += await self._complete(body)
            pruned = await self._prune(
                shard, now=now, exists=lambda name: name in indexed and self._accepted(name)
            )
            replaced += pruned is True
            lost += pruned is False
        self._missing = missing
        self._released = frozenset(before - claimed)
        if replaced or completed:
            log.info(
                "window shards: %d pruned of closed claims, %d ReportJob(s) created from "
                "claims without one",
                replaced,
                completed,
            )
        return Swept(pruned=replaced, lost=lost, completed=completed)

    async def _prune(self, shard: Obj, *, now: float, exists: Callable[[str], bool]) -> bool | None:
        """Write the shard without its closed claims: True done, None nothing to prune, False
        refused (it changed since it was read: the next sweep tries again). A REPLACE (a shard
        without an epoch, or holding entries of before) that lost is tried once more on a
        fresh read: on a busy shard the list is soon stale for a REPLACE, which any write in
        between refuses, while a PATCH only minds the entries it removes."""
        name = str(shard["metadata"]["name"])
        for attempt in range(2):
            write = pruning_write(shard, now=now, exists=exists)
            if write is None:
                return None
            try:
                await self._write(name, write)
            except Conflict as refused:
                log.info(
                    "window shard %s not pruned (%s): it changed since it was read", name, refused
                )
                fresh = (
                    None
                    if write.patch is not None or attempt
                    else await self._api.get_window_shard(name=name)
                )
                if fresh is None:
                    return False
                shard = fresh
                continue
            return True
        return False

    async def _write(self, name: str, write: ShardWrite) -> None:
        if write.patch is not None:
            await self._api.patch_window_shard(name=name, patch=write.patch)
        elif write.replacement is not None:
            await self._api.replace_window_shard(body=write.replacement)

    async def _complete(self, body: Obj) -> int:
        name = body["metadata"]["name"]
        if not self._owns(name):  # let go meanwhile
            return 0
        try:
            await self._api.create_reportjob(body=body)
        except Conflict:  # it exists (its gateway created it after all)
            return 0
        log.warning("created ReportJob %s from its claim (its gateway did not)", name)
        return 1
