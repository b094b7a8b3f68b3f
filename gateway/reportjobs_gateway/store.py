"""The only module of the gateway that talks to the Kubernetes API (kubernetes_asyncio).

Requests go through the client's plain `call_api` with paths: answers are JSON dicts, never
model classes to build and serialize back. Every answer also gives the server's clock (Date).
"""

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config import ConfigException, load_incluster_config, load_kube_config

from reportjobs_gateway.ports import (
    AlreadyExists,
    Read,
    ReportJob,
    Stale,
    StoreUnavailable,
    WindowShard,
)
from reportjobs_model import crd
from reportjobs_model.timestamps import unix_of_http_date

log = logging.getLogger(__name__)

_UNREACHABLE = (aiohttp.ClientError, asyncio.TimeoutError, OSError, ConfigException)
_REPORTJOBS = f"/apis/{crd.GROUP}/{crd.VERSION}/namespaces/{{namespace}}/{crd.PLURAL}"
_SHARDS = "/api/v1/namespaces/{namespace}/configmaps"


class _Answered(Exception):
    """The API server answered 404 or 409 (the callers decide what that means)."""

    def __init__(self, status: int, server_time: float) -> None:
        super().__init__(status)
        self.status = status
        self.server_time = server_time


class KubeStore:
    """ReportJobs and window shards of one namespace; the client is made on first use."""

    def __init__(self, *, namespace: str, api_timeout_seconds: float) -> None:
        self._namespace = namespace
        self._timeout = api_timeout_seconds
        self._client: ApiClient | None = None
        self._connecting = asyncio.Lock()

    async def get(self, name: str) -> Read:
        return await self._get(f"{_REPORTJOBS}/{name}")

    async def create(self, body: ReportJob) -> Read:
        return await self._create(_REPORTJOBS, body)

    async def list(self, *, label_selector: str) -> list[ReportJob]:
        data, _ = await self._plain("GET", _REPORTJOBS, query={"labelSelector": label_selector})
        items: list[ReportJob] = data.get("items") or []
        return items

    async def get_window(self, name: str) -> Read:
        return await self._get(f"{_SHARDS}/{name}")

    async def create_window(self, body: WindowShard) -> None:
        await self._create(_SHARDS, body)

    async def replace_window(self, body: WindowShard) -> None:
        name = body["metadata"]["name"]
        try:
            await self._call("PUT", f"{_SHARDS}/{name}", body=body)
        except _Answered as answer:  # 409: another write came first
            raise Stale(name) from answer

    async def ping(self) -> None:
        await self._plain("GET", _REPORTJOBS, query={"limit": "1"})

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _get(self, path: str) -> Read:
        try:
            data, server_time = await self._call("GET", path)
        except _Answered as answer:
            if answer.status == 404:
                return Read(obj=None, server_time=answer.server_time)
            raise StoreUnavailable(f"unexpected {answer.status} reading {path}") from answer
        return Read(obj=data, server_time=server_time)

    async def _create(self, path: str, body: dict[str, Any]) -> Read:
        try:
            data, server_time = await self._call("POST", path, body=body)
        except _Answered as answer:
            if answer.status == 409:
                raise AlreadyExists(body["metadata"]["name"]) from answer
            raise StoreUnavailable(f"unexpected {answer.status} creating in {path}") from answer
        return Read(obj=data, server_time=server_time)

    async def _plain(
        self, method: str, path: str, *, query: Mapping[str, str]
    ) -> tuple[Any, float]:
        try:
            return await self._call(method, path, query=query)
        except _Answered as answer:
            raise StoreUnavailable(f"unexpected {answer.status} on {method} {path}") from answer

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> tuple[Any, float]:
        """One request; returns the JSON answer and the server's time."""
        try:
            client = await self._connected()
            data, _status, headers = await client.call_api(
                path.format(namespace=self._namespace),
                method,
                query_params=list((query or {}).items()),
                header_params={"Accept": "application/json", "Content-Type": "application/json"},
                body=body,
                response_types_map={200: "object", 201: "object"},
                auth_settings=["BearerToken"],
                _return_http_data_only=False,
                _request_timeout=self._timeout,
            )
        except ApiException as exc:
            if exc.status in (404, 409):
                raise _Answered(exc.status, _server_time(exc.headers)) from exc
            log.warning(
                "Kubernetes API answered %s to %s %s: %s", exc.status, method, path, exc.reason
            )
            raise StoreUnavailable(f"Kubernetes API answered {exc.status} {exc.reason}") from exc
        except _UNREACHABLE as exc:
            log.warning("Kubernetes API unreachable for %s %s: %r", method, path, exc)
            raise StoreUnavailable(f"Kubernetes API unreachable: {type(exc).__name__}") from exc
        return data, _server_time(headers)

    async def _connected(self) -> ApiClient:
        async with self._connecting:
            if self._client is None:
                configuration = Configuration()
                if os.environ.get("KUBERNETES_SERVICE_HOST"):
                    load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
                else:
                    await load_kube_config(client_configuration=configuration)
                self._client = ApiClient(configuration=configuration)
            return self._client


def _server_time(headers: Mapping[str, str] | None) -> float:
    """The server's time from the Date header (local time if it has none)."""
    date = (headers or {}).get("Date")
    if date is None:
        log.warning("Kubernetes API answer without a Date header; using the local clock")
        return time.time()
    return unix_of_http_date(date)
