"""What the operator needs from the Kubernetes API (objects are JSON dicts).

Reads come from the index (index.py); these are the requests the operator makes besides its
watches: writes, and the reads a conflict or a missing object calls for.
"""

from typing import Any, Protocol

from reportjobs_model.window import Patch

Obj = dict[str, Any]


class Conflict(Exception):
    """409: the name is taken, or the resourceVersion we wrote against is stale."""


class Refused(Exception):
    """The API server refused a write for what it is (403: a quota, a policy; 422: admission):
    trying again later may succeed once someone changed the cluster."""


class Fenced(Exception):
    """This replica no longer holds the shard of what it was about to write (sharding.py): the
    write was not sent."""


class ReconcileApi(Protocol):
    async def get_reportjob(self, *, name: str) -> Obj | None:
        """A fresh read, after a write conflicted."""
        ...

    async def replace_reportjob_status(self, *, body: Obj) -> Obj:
        """Optimistic: body carries metadata.resourceVersion; raises Conflict when stale or gone."""
        ...

    async def delete_reportjob(
        self, *, name: str, uid: str, resource_version: str | None = None
    ) -> None:
        """Only the ReportJob of this uid (and, given, of this resourceVersion: one changed
        since is left alone); a no-op when it is gone or changed."""
        ...

    async def set_reportjob_finalizers(
        self, *, name: str, uid: str, before: list[str], after: list[str]
    ) -> Obj:
        """metadata.finalizers from `before` (as read) to `after`, on the ReportJob of this uid
        (a JSON patch that tests both); raises Conflict when either changed meanwhile or it is
        gone (or, adding one, when it is being deleted). The ReportJob as written (a deleted
        one is gone once its last finalizer is)."""
        ...

    async def get_job(self, *, name: str) -> Obj | None:
        """A fresh read, after a create met an existing Job."""
        ...

    async def get_window_shard(self, *, name: str) -> Obj | None:
        """A fresh read of a window shard (None: absent), before a ReportJob is taken on."""
        ...

    async def create_job(self, *, body: Obj) -> Obj:
        """Raises Conflict when a Job of that name exists, Refused when the API server refuses
        it otherwise (a quota, an admission policy)."""
        ...

    async def delete_job(self, *, name: str, uid: str) -> None:
        """Background propagation; a no-op when it is gone or replaced."""
        ...

    async def stop_job(self, *, name: str, uid: str) -> Obj:
        """End a Job that is still active (activeDeadlineSeconds 1: the Job controller fails it
        and deletes its pods; the Job stays, so its name stays taken). Only the Job of this uid;
        raises Conflict when it is gone."""
        ...

    async def create_event(self, *, body: Obj) -> None:
        """A Kubernetes Event (events.py); raises Conflict when one of that name exists."""
        ...

    async def delete_pods_of(self, *, reportjob: str, exited: bool) -> None:
        """Delete the worker pods labelled with this ReportJob's name (one collection delete):
        gracefully (SIGTERM, then the kubelet removes each), or with `exited` only the pods
        whose containers have all exited, at once (grace 0, as the pod garbage collector
        does): nothing runs in them, and the kubelet would keep each up to its 10 s status
        sync period."""
        ...


class LeaseApi(Protocol):
    async def list_leases(self, *, label_selector: str) -> list[Obj]: ...

    async def create_lease(self, *, body: Obj) -> Obj:
        """Raises Conflict when it exists."""
        ...

    async def replace_lease(self, *, body: Obj) -> Obj:
        """Optimistic on metadata.resourceVersion; raises Conflict when stale."""
        ...

    async def delete_lease(self, *, name: str, uid: str) -> None: ...


class WindowApi(Protocol):
    async def list_window_shards(self) -> tuple[list[Obj], float]:
        """The gateway's window shards (ConfigMaps) and the server's time of the answer."""
        ...

    async def replace_window_shard(self, *, body: Obj) -> None:
        """Optimistic on metadata.resourceVersion; raises Conflict when stale."""
        ...

    async def patch_window_shard(self, *, name: str, patch: Patch) -> None:
        """A JSON patch; raises Conflict when one of its tests fails (or the shard is gone)."""
        ...

    async def get_window_shard(self, *, name: str) -> Obj | None:
        """A fresh read of one shard (None: absent)."""
        ...

    async def create_reportjob(self, *, body: Obj) -> Obj:
        """The ReportJob of a claim found without it; raises Conflict when it exists."""
        ...


class Cache(Protocol):
    """The index the watches feed (index.py): what reconcile reads instead of the API."""

    def reportjob(self, name: str) -> Obj | None: ...

    def job(self, name: str) -> Obj | None: ...

    def pods_of(self, reportjob: str) -> list[Obj]:
        """The worker pods labelled with this ReportJob's name."""
        ...

    def remember(self, obj: Obj) -> None:
        """What a write returned (a ReportJob or a Job), until its watch event arrives."""
        ...

    def forget(self, obj: Obj) -> None:
        """An object we deleted (a ReportJob, a Job, or a pod deleted with grace 0)."""
        ...
