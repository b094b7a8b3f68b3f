"""Watch-fed caches of the window shards and the ReportJobs, and the server's clock.

Two informers (list + watch) keep every window shard and every ReportJob of the namespace in
memory. They serve reads, and the two fast paths of a submission (docs/design.md, "The
cached paths"): a deduplicated answer with no API request, and a new claim written on the
cached version of the shard. The API server still decides every create: the claim is a JSON
patch that tests the cached epoch and the object's cached entry (or a create of an absent
shard), which fails when the cache was behind on either.

What the cache cannot show is a claim that was removed in versions it skipped or saw go.
`ClaimHistory` notes, on the local monotonic clock, when the cache last saw an object's claim
disappear, and when it last listed (a list may skip versions): a claim time is only taken from
the cache when it is later than the server's time at that moment (an upper bound of it, from
the clock). Removals are committed before the cache hears of them, so a claim accepted later
than that is accepted later than every removal's decision, as the proof needs.

`ShardCatchUp` lets a cached write that lost wait for the cache to move on from the version it
was based on: so a conflict costs a second write on the cached path instead of the API path's
read and write. It only saves requests: the API server still decides.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from reportjobs_gateway.changes import Changes
from reportjobs_gateway.ports import ReportJob, WindowShard
from reportjobs_gateway.servertime import ServerClock, ServerNow
from reportjobs_kube import paths
from reportjobs_kube.client import KubeClient
from reportjobs_kube.informer import Informer, resource_version
from reportjobs_model import labels

log = logging.getLogger(__name__)

WINDOW_SHARDS = f"{labels.MANAGED_BY}={labels.GATEWAY},{labels.COMPONENT}={labels.DEDUP_WINDOWS}"
REPORTJOBS = f"{labels.MANAGED_BY}={labels.GATEWAY}"
_STATUS_SHOWN = (
    "phase",
    "sleepSeconds",
    "attempts",
    "startedAt",
    "finishedAt",
    "message",
    "notification",
)


def trim_reportjob(obj: dict[str, Any]) -> dict[str, Any]:
    """What the API shows of a ReportJob (and the resourceVersion and uid the informer uses)."""
    metadata = obj.get("metadata") or {}
    status = obj.get("status") or {}
    return {
        "metadata": {
            key: metadata[key]
            for key in ("name", "uid", "resourceVersion", "labels", "creationTimestamp")
            if key in metadata
        },
        "spec": obj.get("spec") or {},
        "status": {key: status[key] for key in _STATUS_SHOWN if key in status},
    }


def trim_shard(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata") or {}
    return {
        "metadata": {
            key: metadata[key] for key in ("name", "uid", "resourceVersion") if key in metadata
        },
        "data": obj.get("data") or {},
    }


class ClaimHistory:
    """When (local monotonic time) the cache last saw each object's claim disappear from its
    shard, and when it last listed. Pure: fed by the shard informer, or by a test."""

    def __init__(self, clock: ServerClock) -> None:
        self._clock = clock
        self._relisted = clock.monotonic()
        self._removed: dict[tuple[str, str], float] = {}

    def relisted(self) -> None:
        """Called once a list's answer arrived, before its objects are applied."""
        self._relisted = self._clock.monotonic()

    def changed(self, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        """One version of a shard followed the other (as the watch delivers them, or as our
        own write made it)."""
        if old is None:
            return
        before = old.get("data") or {}
        after = (new or {}).get("data") or {}
        gone = [key for key in before if key not in after]
        if not gone:
            return
        seen = self._clock.monotonic()
        name = str(old["metadata"]["name"])
        for key in gone:
            self._removed[(name, key)] = seen
        if len(self._removed) > 4096:
            self._forget_settled()

    def claim_time_allowed(self, shard: str, key: str, accepted: int) -> bool:
        """Whether a claim of `key` accepted at server second `accepted` is later than the
        server's time when the cache last saw that object's claim removed, or last listed."""
        seen = max(self._relisted, self._removed.get((shard, key), self._relisted))
        then = self._clock.at(seen)
        return then is not None and accepted >= then.latest

    def _forget_settled(self) -> None:
        now = self._clock.now()
        if now is None:
            return
        for entry, seen in list(self._removed.items()):
            then = self._clock.at(seen)
            if then is not None and now.accepted_second >= then.latest:
                del self._removed[entry]


CATCH_UP_SECONDS = 1.0
"""How long a lost cached write waits for the winning version to reach the cache (then the API
path reads it); a watch event takes milliseconds. Speed only: no decision depends on it."""


class ShardCatchUp:
    """Waiting for a shard's cached version to move on (fed with every change of the cached
    shards)."""

    def __init__(
        self,
        window: Callable[[str], WindowShard | None],
        *,
        catch_up_seconds: float = CATCH_UP_SECONDS,
    ) -> None:
        self._window = window
        self._catch_up = catch_up_seconds
        self._changes = Changes()

    def changed(self, old: WindowShard | None, new: WindowShard | None) -> None:
        self._changes.changed(old, new)

    async def moved_on(self, shard: str, *, from_version: str | None) -> bool:
        with self._changes.watching(shard) as woken, contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._catch_up):
                while self._version(shard) == from_version:
                    woken.clear()
                    await woken.wait()
        return self._version(shard) != from_version

    def _version(self, shard: str) -> str | None:
        cached = self._window(shard)
        return None if cached is None else resource_version(cached)


class GatewayCaches:
    """The two informers, the claim history and the clock; `start()` in the app's lifespan."""

    def __init__(self, *, clock: ServerClock) -> None:
        self.clock = clock
        self.history = ClaimHistory(clock)
        self.changes = Changes()
        self.catch_up = ShardCatchUp(self.window)
        self._shards: Informer | None = None
        self._jobs: Informer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, *, client: KubeClient, namespace: str) -> None:
        self._shards = Informer(
            client=client,
            path=paths.configmaps(namespace),
            label_selector=WINDOW_SHARDS,
            trim=trim_shard,
            on_change=self._shard_changed,
            on_relist=self.history.relisted,
        )
        self._jobs = Informer(
            client=client,
            path=paths.reportjobs(namespace),
            label_selector=REPORTJOBS,
            trim=trim_reportjob,
            on_change=self.changes.changed,
        )
        self._tasks = [
            asyncio.create_task(self._shards.run(), name="informer-window-shards"),
            asyncio.create_task(self._jobs.run(), name="informer-reportjobs"),
        ]

    def _shard_changed(self, old: WindowShard | None, new: WindowShard | None) -> None:
        self.history.changed(old, new)
        self.catch_up.changed(old, new)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def ready(self) -> bool:
        """Both informers have listed."""
        return (
            self._shards is not None
            and self._jobs is not None
            and self._shards.synced.is_set()
            and self._jobs.synced.is_set()
        )

    def now(self) -> ServerNow | None:
        return self.clock.now()

    def window(self, name: str) -> WindowShard | None:
        return None if self._shards is None else self._shards.get(name)

    def job(self, name: str) -> ReportJob | None:
        return None if self._jobs is None else self._jobs.get(name)

    def watching(self, name: str) -> contextlib.AbstractContextManager[asyncio.Event]:
        """Wakes the block's waiter at each change of the job (changes.py)."""
        return self.changes.watching(name)

    def jobs(self) -> list[ReportJob]:
        return [] if self._jobs is None else list(self._jobs)

    def claim_time_allowed(self, shard: str, key: str, accepted: int) -> bool:
        return self.history.claim_time_allowed(shard, key, accepted)

    async def moved_on(self, shard: str, *, from_version: str | None) -> bool:
        return await self.catch_up.moved_on(shard, from_version=from_version)

    def window_written(self, *, based_on: str | None, written: WindowShard) -> None:
        """Our write of a shard succeeded: write it through when the cache still holds the
        version it was based on, else the watch will bring it. Versions between the two may be
        skipped, but none of them removed a claim: the write tested the epoch."""
        if self._shards is None:
            return
        cached = self._shards.get(str(written["metadata"]["name"]))
        current = None if cached is None else resource_version(cached)
        if current == based_on:
            self._shards.remember(written)

    def job_written(self, written: ReportJob) -> None:
        if self._jobs is not None:
            self._jobs.remember(written)
