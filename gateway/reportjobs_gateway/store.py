"""The only module of the gateway that talks to the Kubernetes API (reportjobs_kube).

Answers are JSON dicts; every answer also gives the server's clock (its Date header), which
also feeds the ServerClock (with the request's round trip). Successful writes are written
through into the caches.
"""

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from reportjobs_gateway.ports import (
    AlreadyExists,
    Read,
    ReportJob,
    Stale,
    StoreUnavailable,
    WindowShard,
)
from reportjobs_gateway.servertime import ServerClock
from reportjobs_kube import paths
from reportjobs_kube.client import JSON_PATCH, MERGE_PATCH, KubeClient
from reportjobs_kube.errors import Answered, Conflict, Invalid, NotFound, Unreachable
from reportjobs_model.window import Patch

log = logging.getLogger(__name__)


_PATCH_REFUSED = (Invalid, Conflict, NotFound)
"""A JSON patch of a window shard whose test failed (422), whose retries on the server met other
writes every time (409), or whose shard is gone (404)."""


class WriteThrough(Protocol):
    """Where successful writes go besides the API server (caches.GatewayCaches)."""

    def window_written(self, *, based_on: str | None, written: WindowShard) -> None: ...

    def job_written(self, written: ReportJob) -> None: ...


class KubeStore:
    """ReportJobs and window shards of one namespace; the client is made on first use."""

    def __init__(
        self,
        *,
        namespace: str,
        api_timeout_seconds: float,
        clock: ServerClock | None = None,
        write_through: WriteThrough | None = None,
    ) -> None:
        self._namespace = namespace
        self._timeout = api_timeout_seconds
        self._clock = clock or ServerClock()
        self._write_through = write_through
        self._client: KubeClient | None = None
        self._connecting = asyncio.Lock()

    async def get(self, name: str) -> Read:
        return await self._get(paths.reportjobs(self._namespace, name))

    async def create(self, body: ReportJob) -> Read:
        read = await self._create(paths.reportjobs(self._namespace), body)
        if self._write_through is not None and read.obj is not None:
            self._write_through.job_written(read.obj)
        return read

    async def request_cancel(self, name: str, *, uid: str) -> ReportJob | None:
        """spec.cancel = true on the ReportJob of this uid (a merge patch; None when it is gone,
        or is another ReportJob of that name: a uid differs, which the server refuses with 422,
        "field is immutable", as tests/contract/ shows)."""
        patch = {"metadata": {"uid": uid}, "spec": {"cancel": True}}
        path = paths.reportjobs(self._namespace, name)
        refused = (NotFound, Conflict, Invalid)
        try:
            data, _ = await self._call(
                "PATCH", path, body=patch, content_type=MERGE_PATCH, passed=refused
            )
        except refused:
            return None
        if self._write_through is not None:
            self._write_through.job_written(data)
        return data

    async def list(self, *, label_selector: str) -> list[ReportJob]:
        data, _ = await self._call(
            "GET", paths.reportjobs(self._namespace), query={"labelSelector": label_selector}
        )
        items: list[ReportJob] = data.get("items") or []
        return items

    async def get_window(self, name: str) -> Read:
        return await self._get(paths.configmaps(self._namespace, name))

    async def create_window(self, body: WindowShard) -> WindowShard:
        written = (await self._create(paths.configmaps(self._namespace), body)).obj or {}
        return self._window_written(None, written)

    async def replace_window(self, body: WindowShard) -> WindowShard:
        name = body["metadata"]["name"]
        try:
            written, _ = await self._call("PUT", paths.configmaps(self._namespace, name), body=body)
        except (Conflict, NotFound) as exc:  # another write came first
            raise Stale(name) from exc
        based_on = body["metadata"].get("resourceVersion")
        if based_on is None:  # unconditional (the protocol never sends one): not cached
            return written
        return self._window_written(str(based_on), written)

    async def patch_window(self, name: str, patch: Patch, *, based_on: str) -> WindowShard:
        path = paths.configmaps(self._namespace, name)
        try:
            written, _ = await self._call(
                "PATCH", path, body=patch, content_type=JSON_PATCH, passed=_PATCH_REFUSED
            )
        except _PATCH_REFUSED as exc:  # a test failed: a write came first
            raise Stale(name) from exc
        return self._window_written(based_on, written)

    def _window_written(self, based_on: str | None, written: WindowShard) -> WindowShard:
        if self._write_through is not None and written:
            self._write_through.window_written(based_on=based_on, written=written)
        return written

    async def connected(self) -> KubeClient:
        """The client (made on first use; raises Unreachable without a configuration)."""
        return await self._connected()

    async def ping(self) -> None:
        await self._call("GET", paths.reportjobs(self._namespace), query={"limit": "1"})

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _get(self, path: str) -> Read:
        try:
            data, server_time = await self._call("GET", path)
        except NotFound as exc:
            return Read(obj=None, server_time=exc.server_time)
        return Read(obj=data, server_time=server_time)

    async def _create(self, path: str, body: dict[str, Any]) -> Read:
        try:
            data, server_time = await self._call("POST", path, body=body)
        except Conflict as exc:
            raise AlreadyExists(body["metadata"]["name"]) from exc
        return Read(obj=data, server_time=server_time)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | Patch | None = None,
        query: Mapping[str, str] | None = None,
        content_type: str | None = None,
        passed: tuple[type[Answered], ...] = (NotFound, Conflict),
    ) -> tuple[dict[str, Any], float]:
        """One request; the errors in `passed` are the caller's to map, others are
        StoreUnavailable."""
        try:
            client = await self._connected()
            sent = self._clock.monotonic()
            try:
                answer = await client.request(
                    method, path, query=query, body=body, content_type=content_type
                )
            except Answered as exc:
                self._clock.observe(
                    date=exc.server_time, sent=sent, received=self._clock.monotonic()
                )
                raise
            self._clock.observe(
                date=answer.server_time, sent=sent, received=self._clock.monotonic()
            )
        except Answered as exc:
            if isinstance(exc, passed):
                raise
            log.warning("Kubernetes API answered %s to %s %s", exc, method, path)
            raise StoreUnavailable(f"Kubernetes API answered {exc.status} {exc.reason}") from exc
        except Unreachable as exc:
            raise StoreUnavailable(str(exc)) from exc
        return answer.data, answer.server_time

    async def _connected(self) -> KubeClient:
        async with self._connecting:
            if self._client is None:
                self._client = await KubeClient.connect(
                    timeout_seconds=self._timeout, user_agent="reportjobs-gateway"
                )
            return self._client
