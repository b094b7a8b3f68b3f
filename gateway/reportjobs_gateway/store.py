"""The only module of the gateway that talks to the Kubernetes API (reportjobs_kube).

Answers are JSON dicts; every answer also gives the server's clock (its Date header).
"""

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from reportjobs_gateway.ports import (
    AlreadyExists,
    Read,
    ReportJob,
    Stale,
    StoreUnavailable,
    WindowShard,
)
from reportjobs_kube import paths
from reportjobs_kube.client import KubeClient
from reportjobs_kube.errors import Answered, Conflict, NotFound, Unreachable

log = logging.getLogger(__name__)


class KubeStore:
    """ReportJobs and window shards of one namespace; the client is made on first use."""

    def __init__(self, *, namespace: str, api_timeout_seconds: float) -> None:
        self._namespace = namespace
        self._timeout = api_timeout_seconds
        self._client: KubeClient | None = None
        self._connecting = asyncio.Lock()

    async def get(self, name: str) -> Read:
        return await self._get(paths.reportjobs(self._namespace, name))

    async def create(self, body: ReportJob) -> Read:
        return await self._create(paths.reportjobs(self._namespace), body)

    async def list(self, *, label_selector: str) -> list[ReportJob]:
        data, _ = await self._call(
            "GET", paths.reportjobs(self._namespace), query={"labelSelector": label_selector}
        )
        items: list[ReportJob] = data.get("items") or []
        return items

    async def get_window(self, name: str) -> Read:
        return await self._get(paths.configmaps(self._namespace, name))

    async def create_window(self, body: WindowShard) -> None:
        await self._create(paths.configmaps(self._namespace), body)

    async def replace_window(self, body: WindowShard) -> None:
        name = body["metadata"]["name"]
        try:
            await self._call("PUT", paths.configmaps(self._namespace, name), body=body)
        except Conflict as exc:  # another write came first
            raise Stale(name) from exc
        except NotFound as exc:
            raise Stale(name) from exc

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
        body: dict[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> tuple[dict[str, Any], float]:
        """One request; NotFound and Conflict are the callers' to map, others are
        StoreUnavailable."""
        try:
            client = await self._connected()
            answer = await client.request(method, path, query=query, body=body)
        except (NotFound, Conflict):
            raise
        except Answered as exc:
            log.warning("Kubernetes API answered %s to %s %s", exc, method, path)
            raise StoreUnavailable(f"Kubernetes API answered {exc.status} {exc.reason}") from exc
        except Unreachable as exc:
            raise StoreUnavailable(str(exc)) from exc
        return answer.data, answer.server_time

    async def _connected(self) -> KubeClient:
        async with self._connecting:
            if self._client is None:
                self._client = await KubeClient.connect(timeout_seconds=self._timeout)
            return self._client
