"""The gateway's Prometheus metrics, and the ASGI middleware that counts submissions.

The Kubernetes API requests (by verb, resource and code) are counted by reportjobs_kube.
"""

import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reportjobs_gateway.errors import SERVED_BY

SUBMISSIONS = Counter(
    "reportjobs_gateway_submissions",
    "Submissions (POST/PUT /jobs) by outcome",
    ["outcome"],
)
SUBMIT_SECONDS = Histogram(
    "reportjobs_gateway_submit_seconds",
    "Time to answer a submission, by outcome",
    ["outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SUBMISSION_PATHS = Counter(
    "reportjobs_gateway_submission_paths",
    "Answered submissions by path: cached (no API request), cached_shard (the shard's version "
    "from the cache), api (the shard read from the API)",
    ["path"],
)
LOST_WRITES = Counter(
    "reportjobs_gateway_lost_claim_writes",
    "Claims written on a shard version that was no longer current for the object (a claim of "
    "it, or a removal from its shard, came first, or the cache was behind): the submission "
    "tried again",
)
CLAIM_SECONDS = Histogram(
    "reportjobs_gateway_claim_seconds",
    "Time to claim a window for a new job (answered 201), by what delayed it besides its own "
    "requests: none, or lost (a claim write lost to a write of the same object or a removal "
    "from its shard, and was written again)",
    ["delay"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 1, 2.5),
)
for _delay in ("none", "lost"):
    CLAIM_SECONDS.labels(_delay)
OUTCOMES = {201: "created", 200: "deduplicated", 422: "invalid", 503: "unavailable"}

for _outcome in (*OUTCOMES.values(), "error"):
    SUBMISSIONS.labels(_outcome)


class GatewayMiddleware:
    """Sets X-Served-By on every answer and counts submissions (pure ASGI: no per-request
    task, unlike BaseHTTPMiddleware)."""

    def __init__(self, app: ASGIApp, *, pod_name: str) -> None:
        self.app = app
        self.served_by = (SERVED_BY.lower().encode(), pod_name.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        submission = scope["path"] == "/jobs" and scope["method"] in ("POST", "PUT")
        started = time.perf_counter()
        status: list[int] = []

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
                headers: Any = message.setdefault("headers", [])
                headers.append(self.served_by)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapped)
        finally:
            if submission:
                outcome = OUTCOMES.get(status[0] if status else 500, "error")
                SUBMISSIONS.labels(outcome).inc()
                SUBMIT_SECONDS.labels(outcome).observe(time.perf_counter() - started)
