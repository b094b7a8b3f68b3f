"""A list+watch of one collection into memory (client-go's informer, in small).

The store maps names to (trimmed) objects. Each change calls `on_change(old, new)` (None for
absent) synchronously, so a consumer can compare what it cares about and queue work; between
watch events these are consecutive versions, but a (re)list, announced by `on_relist()` once its
answer arrived, may skip versions. Writers
may `remember` what a write returned: the store never moves back to an older resourceVersion, so
a reconcile right after a write sees the write even before its watch event arrives.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from reportjobs_kube.client import KubeClient, list_all
from reportjobs_kube.errors import Answered, Gone, Unreachable

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Trim = Callable[[Obj], Obj]
OnChange = Callable[[Obj | None, Obj | None], None]
BACKOFF_MAX_SECONDS = 30.0


def without_managed_fields(obj: Obj) -> Obj:
    metadata = {k: v for k, v in obj.get("metadata", {}).items() if k != "managedFields"}
    return {**obj, "metadata": metadata}


def _ignore(_old: Obj | None, _new: Obj | None) -> None:
    return None


def name_of(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


def resource_version(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("resourceVersion", ""))


def is_older(candidate: Obj, than: Obj) -> bool:
    """Whether candidate is an older version of the same object than `than` (when the two
    resourceVersions compare as numbers, as etcd's do; never when they don't)."""
    if candidate.get("metadata", {}).get("uid") != than.get("metadata", {}).get("uid"):
        return False
    try:
        return int(resource_version(candidate)) < int(resource_version(than))
    except ValueError:
        return False


class Informer:
    def __init__(
        self,
        *,
        client: KubeClient,
        path: str,
        label_selector: str = "",
        trim: Trim = without_managed_fields,
        on_change: OnChange = _ignore,
        on_relist: Callable[[], None] = lambda: None,
        watch_seconds: int = 300,
    ) -> None:
        self._client = client
        self._path = path
        self._query = {"labelSelector": label_selector} if label_selector else {}
        self._trim = trim
        self._on_change = on_change
        self._on_relist = on_relist
        self._watch_seconds = watch_seconds
        self._objects: dict[str, Obj] = {}
        self._resource_version = ""
        self.synced = asyncio.Event()
        self.connected = False

    def get(self, name: str) -> Obj | None:
        return self._objects.get(name)

    def __iter__(self) -> Iterator[Obj]:
        return iter(list(self._objects.values()))

    def __len__(self) -> int:
        return len(self._objects)

    def names(self) -> set[str]:
        return set(self._objects)

    def remember(self, obj: Obj) -> None:
        """Write-through of what a write returned (ignored when the store has a newer version)."""
        self._put(self._trim(obj))

    def forget(self, obj: Obj) -> None:
        """After our own delete: the object of this uid is gone (its watch event will agree)."""
        current = self._objects.get(name_of(obj))
        if current is not None and current["metadata"].get("uid") == obj["metadata"].get("uid"):
            del self._objects[name_of(obj)]
            self._on_change(current, None)

    def _put(self, obj: Obj) -> None:
        old = self._objects.get(name_of(obj))
        if old is not None and is_older(obj, old):
            return
        self._objects[name_of(obj)] = obj
        self._on_change(old, obj)

    def _delete(self, obj: Obj) -> None:
        old = self._objects.pop(name_of(obj), None)
        if old is not None:
            self._on_change(old, None)

    async def _relist(self) -> None:
        items, self._resource_version, _ = await list_all(
            self._client, self._path, query=self._query
        )
        self._on_relist()  # the changes below may skip versions
        fresh = {name_of(item): self._trim(item) for item in items}
        for name in [name for name in self._objects if name not in fresh]:
            self._on_change(self._objects.pop(name), None)
        for obj in fresh.values():
            self._put(obj)
        self.synced.set()

    def _apply(self, event: Obj) -> bool:
        """Apply one watch event; False when the watch must start over from a new list."""
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            log.info("watch of %s ended: %s", self._path, obj.get("message"))
            return False
        self._resource_version = resource_version(obj) or self._resource_version
        if kind in ("ADDED", "MODIFIED"):
            self._put(self._trim(obj))
        elif kind == "DELETED":
            self._delete(obj)
        return True

    async def run(self) -> None:
        """List, then watch from the list's version; again on errors, with backoff. Runs until
        cancelled."""
        backoff = 1.0
        must_list = True
        while True:
            try:
                if must_list:
                    await self._relist()
                    must_list = False
                query = {**self._query, "resourceVersion": self._resource_version}
                query["allowWatchBookmarks"] = "true"
                self.connected = True
                async for event in self._client.watch(
                    self._path, query=query, timeout_seconds=self._watch_seconds
                ):
                    if not self._apply(event):
                        must_list = True
                        break
                backoff = 1.0
            except Gone:
                must_list = True
            except (Unreachable, Answered) as exc:
                self.connected = False
                log.warning("watch of %s failed (%s); again in %.0f s", self._path, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)


@contextlib.asynccontextmanager
async def running(*informers: Informer) -> AsyncIterator[list["asyncio.Task[None]"]]:
    """Run the informers for the duration of the block, entered once all have listed; the
    block gets their tasks (which end only on a bug: errors of the API are retried)."""
    tasks = [asyncio.create_task(informer.run()) for informer in informers]
    try:
        synced: asyncio.Future[Any] = asyncio.ensure_future(
            asyncio.gather(*(informer.synced.wait() for informer in informers))
        )
        waited: list[asyncio.Future[Any]] = [synced, *tasks]
        done, _ = await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
        if synced not in done:
            synced.cancel()
            for task in done:
                task.result()  # an informer that ended before syncing: its error
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
