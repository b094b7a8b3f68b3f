"""The dedup protocol of docs/design.md, over any JobStore.

Every decision uses the API server's clock (the Date header of its answers) and objects read
from the API server; nothing cached decides anything.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from reportjobs_gateway.manifests import build_reportjob
from reportjobs_gateway.ports import AlreadyExists, JobStore, ReportJob, StoreUnavailable
from reportjobs_model.naming import job_name
from reportjobs_model.reportjob import created_unix, is_deleting, is_void, uid_of
from reportjobs_model.window import bucket_of

SETTLE_SECONDS = 2
"""A create's creationTimestamp is stamped a moment before it commits. A GET of bucket b-1
in the first seconds of bucket b could miss a create stamped just before b began; waiting
until the server clock is this far into the bucket makes such a create visible."""

MAX_ROUNDS = 8
DELETING_PAUSE_SECONDS = 0.25

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Submitted:
    job: ReportJob
    created: bool


class SubmissionGaveUp(StoreUnavailable):
    """No stable answer after MAX_ROUNDS rounds."""


@dataclass(frozen=True, slots=True)
class _Request:
    store: JobStore
    object_id: str
    timeout_seconds: int
    window: int
    settle: int
    sleep: Sleep


async def submit(
    store: JobStore,
    *,
    object_id: str,
    timeout_seconds: int,
    window_seconds: int,
    sleep: Sleep = asyncio.sleep,
    settle_seconds: int = SETTLE_SECONDS,
    max_rounds: int = MAX_ROUNDS,
) -> Submitted:
    """Answer with the job of `object_id` created within the window, or create one."""
    request = _Request(
        store=store,
        object_id=object_id,
        timeout_seconds=timeout_seconds,
        window=window_seconds,
        settle=max(0, min(settle_seconds, window_seconds - 1)),
        sleep=sleep,
    )
    t = store.clock_hint()
    for _ in range(max_rounds):
        outcome, t = await _round(request, t)
        if outcome is not None:
            return outcome
    raise SubmissionGaveUp(f"no stable answer for the submission after {max_rounds} rounds")


def _answers_at(reportjob: ReportJob, *, now: float, window: int) -> bool:
    """Whether a request at server time `now` may be answered with this job."""
    return (
        not is_void(reportjob)
        and not is_deleting(reportjob)
        and created_unix(reportjob) + window > now
    )


async def _round(request: _Request, t: float) -> tuple[Submitted | None, float]:
    """Steps 1 and 2; returns the outcome (None: start again) and the latest server time."""
    bucket = bucket_of(t=t, window=request.window)
    previous = await request.store.get(job_name(object_id=request.object_id, bucket=bucket - 1))
    t = previous.server_time
    if bucket_of(t=t, window=request.window) != bucket:
        return None, t
    unsettled = bucket * request.window + request.settle - t
    if unsettled > 0:
        await request.sleep(unsettled)
        return None, t + unsettled
    if previous.obj is not None and _answers_at(previous.obj, now=t, window=request.window):
        return Submitted(job=previous.obj, created=False), t
    return await _create(request, bucket)


async def _create(request: _Request, bucket: int) -> tuple[Submitted | None, float]:
    """Step 3."""
    store = request.store
    name = job_name(object_id=request.object_id, bucket=bucket)
    body = build_reportjob(
        name=name,
        object_id=request.object_id,
        timeout_seconds=request.timeout_seconds,
        window_seconds=request.window,
        bucket=bucket,
    )
    try:
        read = await store.create(body)
        created = True
    except AlreadyExists:
        read = await store.get(name)
        created = False
    job, t = read.obj, read.server_time
    if job is None:
        return None, t
    if is_void(job):
        await store.delete(name=name, uid=uid_of(job))
        return None, t
    if is_deleting(job):
        await request.sleep(DELETING_PAUSE_SECONDS)
        return None, t + DELETING_PAUSE_SECONDS
    if not _answers_at(job, now=t, window=request.window):
        return None, t
    return Submitted(job=job, created=created), t
