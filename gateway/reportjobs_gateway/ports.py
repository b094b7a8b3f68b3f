"""What the gateway needs from the Kubernetes API, independent of the client library."""

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any, Protocol

from reportjobs_gateway.servertime import ServerNow
from reportjobs_model.window import Patch

ReportJob = dict[str, Any]
WindowShard = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Read:
    """An answer from the store: the object (None when absent) and the server's clock."""

    obj: dict[str, Any] | None
    server_time: float


class StoreUnavailable(Exception):
    """The Kubernetes API could not be reached or did not answer usefully."""


class AlreadyExists(Exception):
    """A create met an object of the same name."""


class Stale(Exception):
    """A write was based on a version that is no longer current for it (a test of its patch
    failed), or the object is gone."""


class JobStore(Protocol):
    async def get(self, name: str) -> Read:
        """The ReportJob of this name."""
        ...

    async def create(self, body: ReportJob) -> Read:
        """Create the ReportJob; raises AlreadyExists when the name is taken."""
        ...

    async def list(self, *, label_selector: str) -> list[ReportJob]: ...

    async def request_cancel(self, name: str, *, uid: str) -> ReportJob | None:
        """Ask for the ReportJob of this uid to be cancelled (spec.cancel); None when gone."""
        ...

    async def get_window(self, name: str) -> Read:
        """The window shard (a ConfigMap) of this name, and the server's time of the answer."""
        ...

    async def create_window(self, body: WindowShard) -> WindowShard:
        """Create the window shard (and return it); raises AlreadyExists when the name is
        taken."""
        ...

    async def replace_window(self, body: WindowShard) -> WindowShard:
        """Replace it if body's metadata.resourceVersion is current (and return it); else
        raises Stale."""
        ...

    async def patch_window(self, name: str, patch: Patch, *, based_on: str) -> WindowShard:
        """Apply the JSON patch to the window shard (and return it) if its tests hold on the
        current version; else raises Stale. `based_on`: the resourceVersion the patch was built
        on (for the write-through)."""
        ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless ReportJobs can be listed."""
        ...


class Cache(Protocol):
    """What the watches show (caches.py), and the bounds of the server's time now."""

    def ready(self) -> bool:
        """The caches have listed: an object they lack was absent at some moment since."""
        ...

    def now(self) -> ServerNow | None:
        """Bounds of the API server's time now (None: no fresh answer to derive them from)."""
        ...

    def window(self, name: str) -> WindowShard | None:
        """A version of the window shard (None: absent in the cached version)."""
        ...

    def job(self, name: str) -> ReportJob | None: ...

    def watching(self, name: str) -> contextlib.AbstractContextManager[asyncio.Event]:
        """An event set at each change the watch brings of the job `name`, while the block
        runs (changes.py)."""
        ...

    def claim_time_allowed(self, shard: str, key: str, accepted: int) -> bool:
        """Whether `accepted` is later than the server's time whenever the cache may have
        missed, or saw, the removal of this object's claim (see caches.ClaimHistory)."""
        ...

    async def moved_on(self, shard: str, *, from_version: str | None) -> bool:
        """After a cached write of the shard lost: wait, for a bounded time, until the cached
        version is no longer `from_version` (the write that won is on its way in the watch).
        False when it did not come in time."""
        ...
