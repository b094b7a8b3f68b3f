"""What the gateway needs from a ReportJob store, independent of the Kubernetes client."""

from dataclasses import dataclass
from typing import Any, Protocol

ReportJob = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Read:
    """An answer from the store: the object (None when absent) and the server's clock."""

    obj: ReportJob | None
    server_time: float


class StoreUnavailable(Exception):
    """The Kubernetes API could not be reached or did not answer usefully."""


class AlreadyExists(Exception):
    """A create met an object of the same name."""


class JobStore(Protocol):
    def clock_hint(self) -> float:
        """A guess of the server's unix time; it picks what to ask first, never decides."""
        ...

    async def get(self, name: str) -> Read: ...

    async def create(self, body: ReportJob) -> Read:
        """Create the object; raises AlreadyExists when the name is taken."""
        ...

    async def delete(self, *, name: str, uid: str) -> None:
        """Delete the object if it still has this uid; a no-op when it is gone or replaced."""
        ...

    async def list(self, *, label_selector: str) -> list[ReportJob]: ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless ReportJobs can be listed."""
        ...
