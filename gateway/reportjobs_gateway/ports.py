"""What the gateway needs from the Kubernetes API, independent of the client library."""

from dataclasses import dataclass
from typing import Any, Protocol

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
    """A write carried a resourceVersion that is no longer current (or the object is gone)."""


class JobStore(Protocol):
    async def get(self, name: str) -> Read:
        """The ReportJob of this name."""
        ...

    async def create(self, body: ReportJob) -> Read:
        """Create the ReportJob; raises AlreadyExists when the name is taken."""
        ...

    async def list(self, *, label_selector: str) -> list[ReportJob]: ...

    async def get_window(self, name: str) -> Read:
        """The window shard (a ConfigMap) of this name, and the server's time of the answer."""
        ...

    async def create_window(self, body: WindowShard) -> None:
        """Create the window shard; raises AlreadyExists when the name is taken."""
        ...

    async def replace_window(self, body: WindowShard) -> None:
        """Replace it if body's metadata.resourceVersion is current; else raises Stale."""
        ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless ReportJobs can be listed."""
        ...
