"""The only module of the gateway that talks to the Kubernetes API (kubernetes_asyncio)."""

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from kubernetes_asyncio.client import ApiClient, Configuration, CustomObjectsApi
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config import ConfigException, load_incluster_config, load_kube_config

from reportjobs_gateway.ports import AlreadyExists, Read, ReportJob, StoreUnavailable
from reportjobs_model import crd

log = logging.getLogger(__name__)

_UNREACHABLE = (aiohttp.ClientError, asyncio.TimeoutError, OSError, ConfigException)


class _Answered(Exception):
    """The API server answered 404 or 409 (the callers decide what that means)."""

    def __init__(self, status: int, server_time: float) -> None:
        super().__init__(status)
        self.status = status
        self.server_time = server_time


class KubeStore:
    """ReportJobs of one namespace; the client is made on first use."""

    def __init__(self, *, namespace: str, api_timeout_seconds: float) -> None:
        self._namespace = namespace
        self._timeout = api_timeout_seconds
        self._client: ApiClient | None = None
        self._api: Any = None
        self._connecting = asyncio.Lock()
        self._skew = 0.0

    def clock_hint(self) -> float:
        return time.time() + self._skew

    async def get(self, name: str) -> Read:
        try:
            data, server_time = await self._call("get_namespaced_custom_object", name=name)
        except _Answered as answer:
            if answer.status == 404:
                return Read(obj=None, server_time=answer.server_time)
            raise StoreUnavailable(f"unexpected {answer.status} reading {name}") from answer
        return Read(obj=data, server_time=server_time)

    async def create(self, body: ReportJob) -> Read:
        try:
            data, server_time = await self._call("create_namespaced_custom_object", body=body)
        except _Answered as answer:
            if answer.status == 409:
                raise AlreadyExists(body["metadata"]["name"]) from answer
            raise StoreUnavailable(f"unexpected {answer.status} creating a ReportJob") from answer
        return Read(obj=data, server_time=server_time)

    async def delete(self, *, name: str, uid: str) -> None:
        options = {"preconditions": {"uid": uid}, "propagationPolicy": "Background"}
        # 404: already gone; 409: the name now belongs to another object.
        with contextlib.suppress(_Answered):
            await self._call("delete_namespaced_custom_object", name=name, body=options)

    async def list(self, *, label_selector: str) -> list[ReportJob]:
        data, _ = await self._call_plain("list", label_selector=label_selector)
        items: list[ReportJob] = data.get("items") or []
        return items

    async def ping(self) -> None:
        await self._call_plain("list", limit=1)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client, self._api = None, None

    async def _call_plain(self, verb: str, **kwargs: Any) -> tuple[Any, float]:
        try:
            return await self._call(f"{verb}_namespaced_custom_object", **kwargs)
        except _Answered as answer:
            raise StoreUnavailable(f"unexpected {answer.status} on {verb}") from answer

    async def _call(self, method: str, **kwargs: Any) -> tuple[Any, float]:
        """Call a CustomObjectsApi method; returns the data and the server's time."""
        try:
            api = await self._objects()
            data, _status, headers = await getattr(api, f"{method}_with_http_info")(
                group=crd.GROUP,
                version=crd.VERSION,
                namespace=self._namespace,
                plural=crd.PLURAL,
                _request_timeout=self._timeout,
                **kwargs,
            )
        except ApiException as exc:
            if exc.status in (404, 409):
                raise _Answered(exc.status, self._observe(exc.headers)) from exc
            log.warning("Kubernetes API answered %s to %s: %s", exc.status, method, exc.reason)
            raise StoreUnavailable(f"Kubernetes API answered {exc.status} {exc.reason}") from exc
        except _UNREACHABLE as exc:
            log.warning("Kubernetes API unreachable for %s: %r", method, exc)
            raise StoreUnavailable(f"Kubernetes API unreachable: {type(exc).__name__}") from exc
        return data, self._observe(headers)

    def _observe(self, headers: Mapping[str, str] | None) -> float:
        """The server's time from the Date header (local time if it has none)."""
        now = time.time()
        date = (headers or {}).get("Date")
        if date is None:
            log.warning("Kubernetes API answer without a Date header; using the local clock")
            return now
        server_time = parsedate_to_datetime(date).timestamp()
        self._skew = server_time - now
        return server_time

    async def _objects(self) -> Any:
        async with self._connecting:
            if self._api is None:
                configuration = Configuration()
                if os.environ.get("KUBERNETES_SERVICE_HOST"):
                    load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
                else:
                    await load_kube_config(client_configuration=configuration)
                self._client = ApiClient(configuration=configuration)
                self._api = CustomObjectsApi(self._client)
            return self._api
