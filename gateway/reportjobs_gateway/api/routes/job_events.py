"""A job's status changes as Server-Sent Events, driven by the gateway's watch of the jobs."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, status
from sse_starlette import EventSourceResponse, ServerSentEvent

from reportjobs_gateway.changes import Watched, version_of, versions
from reportjobs_gateway.deps import CacheDep, StoreDep
from reportjobs_gateway.ports import ReportJob
from reportjobs_gateway.reads import find_job
from reportjobs_gateway.schemas import ErrorPublic
from reportjobs_gateway.views import to_public

router = APIRouter(prefix="/jobs", tags=["jobs"])

PING_SECONDS = 15
STREAM_SECONDS = 300
"""A stream ends after this long even if the job has not; the client reconnects with
Last-Event-ID (EventSource does so by itself) and gets only what changed since."""
UNSAVED = "0"
"""The event id of a job known only from its claim (its ReportJob is still being created)."""

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "One `job` event per status change, the job JSON as data and its version "
        "as id; the stream ends after the terminal one. Reconnect with `Last-Event-ID` to get "
        "only what changed since.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    404: {"model": ErrorPublic, "description": "No such job"},
    503: {"model": ErrorPublic, "description": "The gateway's watch of the jobs is not running"},
}


async def _changes(
    cache: Watched, job: ReportJob, seen: str | None
) -> AsyncIterator[ServerSentEvent]:
    """An event for each version whose public JSON differs from the last one sent (none for
    the version the client says it has seen); ends after a terminal one."""
    sent = None
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(STREAM_SECONDS):
            async for version in versions(cache, job):
                event_id = version_of(version) or UNSAVED
                public = to_public(version)
                if event_id != seen and public != sent:
                    yield ServerSentEvent(data=public.model_dump_json(), event="job", id=event_id)
                    sent = public
                seen = event_id


@router.get("/{job_id}/events", response_class=EventSourceResponse, responses=_RESPONSES)
async def job_events(
    job_id: str,
    store: StoreDep,
    cache: CacheDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventSourceResponse:
    """Stream the job's status changes until it is terminal."""
    if cache is None or not cache.ready():
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail="the gateway's cache is not running"
        )
    found = await find_job(store, cache, job_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"job {job_id!r} not found")
    return EventSourceResponse(_changes(cache, found, last_event_id), ping=PING_SECONDS)
