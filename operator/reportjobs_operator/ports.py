"""What the operator needs from the Kubernetes API (objects are JSON dicts)."""

from typing import Any, Protocol

Obj = dict[str, Any]


class Conflict(Exception):
    """409: the name is taken, or the resourceVersion we wrote against is stale."""


class ReconcileApi(Protocol):
    async def get_reportjob(self, *, namespace: str, name: str) -> Obj | None: ...

    async def list_reportjobs(self, *, namespace: str) -> list[Obj]: ...

    async def list_job_names(self, *, namespace: str) -> list[str]:
        """Names of the Jobs the operator made (by its managed-by label)."""
        ...

    async def replace_reportjob_status(self, *, namespace: str, body: Obj) -> Obj:
        """Optimistic: body carries metadata.resourceVersion; raises Conflict when stale."""
        ...

    async def delete_reportjob(self, *, namespace: str, name: str, uid: str) -> None: ...

    async def get_job(self, *, namespace: str, name: str) -> Obj | None: ...

    async def create_job(self, *, namespace: str, body: Obj) -> Obj:
        """Raises Conflict when a Job of that name exists."""
        ...

    async def delete_job(self, *, namespace: str, name: str, uid: str) -> None:
        """Background propagation; a no-op when it is gone or replaced."""
        ...

    async def list_worker_pods(self, *, namespace: str, reportjob: str) -> list[Obj]: ...


class LeaseApi(Protocol):
    async def get_lease(self, *, namespace: str, name: str) -> Obj | None: ...

    async def create_lease(self, *, namespace: str, body: Obj) -> Obj:
        """Raises Conflict when it exists."""
        ...

    async def replace_lease(self, *, namespace: str, body: Obj) -> Obj:
        """Optimistic on metadata.resourceVersion; raises Conflict when stale."""
        ...


class WindowApi(Protocol):
    async def list_window_shards(self, *, namespace: str) -> tuple[list[Obj], float]:
        """The gateway's window shards (ConfigMaps) and the server's time of the answer."""
        ...

    async def replace_window_shard(self, *, namespace: str, body: Obj) -> None:
        """Optimistic on metadata.resourceVersion; raises Conflict when stale."""
        ...
