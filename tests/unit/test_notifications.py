"""Deliveries of a job's outcome: the retry rules (pure), and real signed POSTs to a local
receiver that verifies them with standardwebhooks (deliveries.py, webhooks.py)."""

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from reportjobs_model.callbacks import AddressPolicy
from reportjobs_model.phase import Phase
from reportjobs_operator.deliveries import Deliveries, ShardAccess
from reportjobs_operator.notifications import (
    RetryPolicy,
    after,
    attempt_of,
    initial,
    payload,
    webhook_id,
)
from reportjobs_operator.webhooks import WebhookSender
from tests.unit.fakes import FakeCache, FakeOperatorApi, reportjob

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LOCAL = AddressPolicy.of(allowed_cidrs=["127.0.0.0/8"], allowed_hosts=[], blocked_cidrs=[])
NAME = "rj-a-1"


def test_answers_are_sorted_into_delivered_retried_and_failed() -> None:
    assert attempt_of(status_code=204).delivered
    for code in (None, 408, 429, 500, 503):
        attempt = attempt_of(status_code=code)
        assert (attempt.delivered, attempt.retryable) == (False, True), code
    for code in (301, 400, 404, 410):
        attempt = attempt_of(status_code=code)
        assert (attempt.delivered, attempt.retryable) == (False, False), code


def test_the_schedule_doubles_with_jitter_and_spans_about_an_hour() -> None:
    policy = RetryPolicy()
    low = [policy.delay(n, jitter=lambda: 0.0) for n in range(1, 8)]
    high = [policy.delay(n, jitter=lambda: 1.0) for n in range(1, 8)]
    assert high == [40.0 * 2 ** (n - 1) for n in range(1, 8)]
    assert low == [h / 2 for h in high]
    assert 45 * 60 <= (sum(low) + sum(high)) / 2 <= 75 * 60  # the mean: about an hour
    state: dict[str, Any] = {"state": "Pending", "attempts": 0}
    for _ in range(7):
        state = after(state, attempt_of(status_code=503), now=NOW, policy=policy)
        assert state["state"] == "Pending"
    state = after(state, attempt_of(status_code=503), now=NOW, policy=policy)
    assert (state["state"], state["attempts"]) == ("Failed", 8)


def _terminal(callback: str) -> dict[str, Any]:
    rj = reportjob(name=NAME, created=NOW.timestamp() - 60, window=300)
    rj["spec"]["callbackUrl"] = callback
    rj["status"] = {"phase": "Succeeded", "finishedAt": "2026-12-01T11:59:50Z"}
    notification = initial(reportjob=rj, phase=Phase.SUCCEEDED, now=NOW)
    assert notification == {
        "state": "Pending",
        "attempts": 0,
        "nextAttemptAt": "2026-12-01T12:00:00Z",
    }
    rj["status"]["notification"] = notification
    return rj


class Receiver:
    """A local HTTP server that verifies each delivery and answers from a script."""

    def __init__(self, answers: list[int]) -> None:
        self.answers = answers
        self.verified: list[dict[str, Any]] = []
        self.ids: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        self.ids.append(request.headers["webhook-id"])
        Webhook(SECRET).verify(body, dict(request.headers))  # raises on a bad signature
        self.verified.append(json.loads(body))
        return web.Response(status=self.answers.pop(0) if self.answers else 200)

    async def __aenter__(self) -> str:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}/hook"

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


class Clock:
    """From the real now (the receiver checks the signature's timestamp against its clock)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


async def _run(url: str, *, policy: AddressPolicy, rounds: int) -> tuple[FakeOperatorApi, Clock]:
    api = FakeOperatorApi()
    api.add_reportjob(_terminal(url))
    cache = FakeCache(api)
    clock = Clock()
    sender = WebhookSender(secret=SECRET, policy=policy, timeout_seconds=5)
    deliveries = Deliveries(
        sender=sender, policy=RetryPolicy(backoff_seconds=1), concurrency=2, clock=clock
    )
    woken: list[str] = []
    access = ShardAccess(cache=cache, api=api, holds=lambda: True, wake=woken.append)
    try:
        for _ in range(rounds):
            deliveries.consider(NAME, access=access)
            for _ in range(200):
                if not len(deliveries):
                    break
                await asyncio.sleep(0.01)
            clock.now += timedelta(seconds=10)  # past any next attempt
    finally:
        await sender.close()
    return api, clock


async def test_a_delivery_is_signed_and_recorded() -> None:
    receiver = Receiver([200])
    async with receiver as url:
        api, _ = await _run(url, policy=LOCAL, rounds=2)
    (delivered,) = receiver.verified
    assert delivered["type"] == "job.succeeded"
    assert delivered["data"]["job_id"] == NAME
    assert delivered["data"]["status"] == "Succeeded"
    assert receiver.ids == [f"{NAME}.job.succeeded"]
    notification = api.reportjobs[NAME]["status"]["notification"]
    assert (notification["state"], notification["attempts"]) == ("Delivered", 1)
    assert api.events[f"{NAME}.notificationdelivered"]["type"] == "Normal"


async def test_a_receiver_down_for_three_attempts_gets_the_fourth_with_the_same_id() -> None:
    receiver = Receiver([503, 503, 502, 200])
    async with receiver as url:
        api, _ = await _run(url, policy=LOCAL, rounds=6)
    assert len(receiver.ids) == 4
    assert len(set(receiver.ids)) == 1
    notification = api.reportjobs[NAME]["status"]["notification"]
    assert (notification["state"], notification["attempts"]) == ("Delivered", 4)


async def test_410_fails_at_once() -> None:
    receiver = Receiver([410])
    async with receiver as url:
        api, _ = await _run(url, policy=LOCAL, rounds=3)
    assert len(receiver.ids) == 1
    notification = api.reportjobs[NAME]["status"]["notification"]
    assert (notification["state"], notification["lastError"]) == ("Failed", "answered 410")
    assert api.events[f"{NAME}.notificationfailed"]["type"] == "Warning"


async def test_an_address_refused_at_delivery_is_never_connected_to() -> None:
    receiver = Receiver([200])
    async with receiver as url:
        api, _ = await _run(url, policy=AddressPolicy(), rounds=2)  # loopback: refused
    assert receiver.ids == []
    notification = api.reportjobs[NAME]["status"]["notification"]
    assert notification["state"] == "Failed"
    assert "loopback" in notification["lastError"]


def test_the_payload_is_the_job_as_the_api_shows_it() -> None:
    rj = _terminal("https://example.com/h")
    body = json.loads(payload(rj, now=NOW))
    assert body["timestamp"] == "2026-12-01T12:00:00Z"
    assert body["data"]["callback_url"] == "https://example.com/h"
    assert webhook_id(rj) == f"{NAME}.job.succeeded"


@pytest.mark.parametrize(
    ("phase", "kind"),
    [("Failed", "job.failed"), ("TimedOut", "job.timed_out"), ("Cancelled", "job.cancelled")],
)
def test_event_types(phase: str, kind: str) -> None:
    rj = _terminal("https://example.com/h")
    rj["status"]["phase"] = phase
    assert json.loads(payload(rj, now=NOW))["type"] == kind
