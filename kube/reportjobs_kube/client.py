"""One HTTP client for the Kubernetes API: JSON in, JSON out, and the server's clock.

Every answer carries the server's time (its Date header), which the dedup protocol and the
window sweep use instead of the local clock. Errors map to reportjobs_kube.errors.
"""

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Self

import aiohttp

from reportjobs_kube.config import Connection, load_connection
from reportjobs_kube.errors import Unreachable, answered
from reportjobs_kube.metrics import API_LATENCY, API_REQUESTS, verb_and_resource
from reportjobs_model.timestamps import unix_of_http_date

log = logging.getLogger(__name__)

Obj = dict[str, Any]
_UNREACHABLE = (aiohttp.ClientError, TimeoutError, OSError, ValueError)


@dataclass(frozen=True, slots=True)
class Answer:
    data: Obj
    server_time: float


def server_time_of(headers: Mapping[str, str]) -> float:
    """The server's time from the Date header (the local clock if it has none)."""
    date = headers.get("Date")
    if date is None:
        log.warning("Kubernetes API answer without a Date header; using the local clock")
        return time.time()
    return unix_of_http_date(date)


CONNECTIONS = 256
"""At once, watches included: an operator replica holding every one of 16 shards has 48."""


def encode_body(body: object) -> str:
    """A request body as it is sent: Python's JSON, non-ASCII written as `\\u` escapes. The API
    server compares a JSON patch's `test` value byte for byte with its own (Go) encoding of the
    object, so what a test can match depends on this (tests/contract/ checks it)."""
    return json.dumps(body)


MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
USER_AGENT = "reportjobs"


class KubeClient:
    """Requests and watches against one API server; made by `connect()` (or with a session)."""

    def __init__(
        self, *, connection: Connection, timeout_seconds: float, user_agent: str = USER_AGENT
    ) -> None:
        self._connection = connection
        self._user_agent = user_agent
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        connector = aiohttp.TCPConnector(
            ssl=connection.ssl, limit=CONNECTIONS, enable_cleanup_closed=True
        )
        self._session = aiohttp.ClientSession(
            base_url=None, connector=connector, json_serialize=encode_body
        )

    @classmethod
    async def connect(cls, *, timeout_seconds: float, user_agent: str = USER_AGENT) -> Self:
        """`user_agent`: e.g. reportjobs-operator/<pod>; the API server's audit log records it,
        and server-side field managers are named after its first part."""
        return cls(
            connection=load_connection(), timeout_seconds=timeout_seconds, user_agent=user_agent
        )

    async def close(self) -> None:
        await self._session.close()

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": self._user_agent}
        authorization = self._connection.credentials.authorization()
        if authorization:
            headers["Authorization"] = authorization
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Obj | list[Obj] | None = None,
        content_type: str | None = None,
    ) -> Answer:
        """One request; raises NotFound, Conflict, Gone, Invalid, Answered or Unreachable. A
        body (an object, or a JSON patch's list) is sent as JSON, with `content_type` (e.g.
        MERGE_PATCH) when given."""
        verb, resource = verb_and_resource(method, path, watch=False)
        started = time.perf_counter()
        code = "error"
        headers = self._headers()
        if content_type is not None:
            headers["Content-Type"] = content_type
        try:
            async with self._session.request(
                method,
                self._connection.server + path,
                params=query,
                json=body,
                headers=headers,
                timeout=self._timeout,
            ) as response:
                code = str(response.status)
                text = await response.text()
                server_time = server_time_of(response.headers)
        except _UNREACHABLE as exc:
            log.warning("Kubernetes API unreachable for %s %s: %r", method, path, exc)
            raise Unreachable(f"Kubernetes API unreachable: {type(exc).__name__}") from exc
        finally:
            API_REQUESTS.labels(verb, resource, code).inc()
            API_LATENCY.labels(verb, resource).observe(time.perf_counter() - started)
        data: Obj = json.loads(text) if text else {}
        if response.status >= 400:
            reason = str(data.get("message") or response.reason)
            raise answered(response.status, reason, server_time=server_time)
        return Answer(data=data, server_time=server_time)

    async def watch(
        self, path: str, *, query: Mapping[str, str], timeout_seconds: int
    ) -> AsyncIterator[Obj]:
        """The events of one watch request, until the server ends it (after timeout_seconds)."""
        verb, resource = verb_and_resource("GET", path, watch=True)
        params = {**query, "watch": "true", "timeoutSeconds": str(timeout_seconds)}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=timeout_seconds + 60)
        code = "error"
        try:
            async with self._session.get(
                self._connection.server + path,
                params=params,
                headers=self._headers(),
                timeout=timeout,
            ) as response:
                code = str(response.status)
                if response.status >= 400:
                    text = await response.text()
                    raise answered(
                        response.status, text[:200], server_time=server_time_of(response.headers)
                    )
                pending = b""
                async for chunk in response.content.iter_any():
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield json.loads(line)
        except _UNREACHABLE as exc:
            raise Unreachable(f"watch of {path} broke: {type(exc).__name__}: {exc}") from exc
        finally:
            API_REQUESTS.labels(verb, resource, code).inc()


async def list_all(
    client: KubeClient, path: str, *, query: Mapping[str, str], page_size: int = 500
) -> tuple[list[Obj], str, float]:
    """Every item of a collection in pages; with the list's resourceVersion and server time."""
    items: list[Obj] = []
    params = {**query, "limit": str(page_size)}
    while True:
        answer = await client.request("GET", path, query=params)
        items.extend(answer.data.get("items") or [])
        metadata = answer.data.get("metadata") or {}
        if not metadata.get("continue"):
            return items, str(metadata.get("resourceVersion", "")), answer.server_time
        params = {**params, "continue": metadata["continue"]}
        await asyncio.sleep(0)
