"""Sending one signed delivery (Standard Webhooks) to a callback URL.

The host is resolved here and every address it resolves to is checked (no SSRF: the check of
the submission is done again, since DNS can change); the request then goes to the first
address, pinned (the URL's host stays in the Host header and, for https, in SNI and the
certificate check). Redirects are not followed.
"""

import asyncio
import socket
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from standardwebhooks.webhooks import Webhook

from reportjobs_model.callbacks import AddressPolicy, host_and_port
from reportjobs_operator.notifications import Attempt, attempt_of, refused

USER_AGENT = "reportjobs-webhooks"


def pinned_url(url: str, *, address: str, port: int) -> str:
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    return urlunsplit((parts.scheme, f"{host}:{port}", parts.path or "/", parts.query, ""))


class WebhookSender:
    def __init__(
        self, *, secret: str | None, policy: AddressPolicy, timeout_seconds: float
    ) -> None:
        self._webhook = Webhook(secret) if secret else None
        self._policy = policy
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=64, enable_cleanup_closed=True)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def send(self, *, url: str, webhook_id: str, body: str, now: datetime) -> Attempt:
        if self._webhook is None:
            return refused("no signing secret is configured (notifications.secretName)")
        host, port = host_and_port(url)
        try:
            found = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            return attempt_of(status_code=None, error=f"{host} does not resolve: {exc}")
        addresses = [str(info[4][0]) for info in found]
        reason = self._policy.refusal(host=host, addresses=addresses)
        if reason is not None:
            return refused(reason)
        netloc = urlsplit(url).netloc
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "host": netloc,
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self._webhook.sign(webhook_id, now, body),
        }
        https = urlsplit(url).scheme.lower() == "https"
        try:
            async with self._client().post(
                pinned_url(url, address=addresses[0], port=port),
                data=body.encode(),
                headers=headers,
                allow_redirects=False,
                timeout=self._timeout,
                server_hostname=host if https else None,
            ) as response:
                await response.read()
                return attempt_of(status_code=response.status)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return attempt_of(status_code=None, error=f"{type(exc).__name__}: {exc}"[:300])
