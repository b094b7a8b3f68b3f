"""Waiting for a cached object to change, woken by its watch (no polling loop).

The cache's informers (the ReportJobs', the window shards') call `Changes.changed(old, new)`
after they stored each new version; a waiter registers its wake-up before it reads the cache, so
no change can fall between its read and its wait.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

from reportjobs_gateway.ports import ReportJob
from reportjobs_model.phase import Phase
from reportjobs_model.reportjob import status_of


class Watched(Protocol):
    """A cache that names each job's current version and wakes the waiters of a job."""

    def job(self, name: str) -> ReportJob | None: ...

    def watching(self, name: str) -> contextlib.AbstractContextManager[asyncio.Event]: ...


class Changes:
    """The waiters on each object, by name (of one kind: one `Changes` per informer)."""

    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Event]] = {}

    def changed(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        name = str((new or old or {}).get("metadata", {}).get("name"))
        for woken in self._waiting.get(name, ()):
            woken.set()

    @contextlib.contextmanager
    def watching(self, name: str) -> Iterator[asyncio.Event]:
        """An event set at each change of the object `name` while the block runs."""
        woken = asyncio.Event()
        self._waiting.setdefault(name, set()).add(woken)
        try:
            yield woken
        finally:
            waiting = self._waiting.get(name, set())
            waiting.discard(woken)
            if not waiting:
                self._waiting.pop(name, None)

    def __len__(self) -> int:
        """Requests waiting now."""
        return sum(len(waiting) for waiting in self._waiting.values())


def version_of(job: ReportJob | None) -> str | None:
    return None if job is None else job.get("metadata", {}).get("resourceVersion")


def is_terminal(job: ReportJob) -> bool:
    return Phase(status_of(job).get("phase", Phase.PENDING)).is_terminal


def is_newer(version: str | None, than: str | None) -> bool:
    """A later resourceVersion (etcd's compare as numbers; any other difference counts)."""
    if version == than or version is None:
        return False
    try:
        return than is None or int(version) > int(than)
    except ValueError:
        return True


async def next_version(cache: Watched, *, name: str, seen: str | None) -> ReportJob:
    """The cached job once its version is later than `seen` (e.g. the cache still has the
    version before our own write: it is skipped); callers bound the wait with
    `asyncio.timeout`."""
    with cache.watching(name) as woken:
        while True:
            woken.clear()
            current = cache.job(name)
            if current is not None and is_newer(version_of(current), seen):
                return current
            await woken.wait()


async def versions(cache: Watched, job: ReportJob) -> AsyncIterator[ReportJob]:
    """The job, then each new version the watch brings of it, until a terminal one."""
    name = str(job["metadata"]["name"])
    yield job
    while not is_terminal(job):
        job = await next_version(cache, name=name, seen=version_of(job))
        yield job
