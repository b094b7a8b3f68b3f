"""Cancelling a job: ask the operator through spec.cancel, then wait (bounded, woken by the
watch) for the outcome it writes (docs/design.md, "Cancel")."""

import asyncio
import contextlib
from dataclasses import dataclass

from reportjobs_gateway.changes import versions
from reportjobs_gateway.ports import AlreadyExists, Cache, JobStore, ReportJob
from reportjobs_model.phase import Phase
from reportjobs_model.reportjob import metadata_of, name_of, status_of, with_cancel

CANCEL_WAIT_SECONDS = 10.0
"""How long a DELETE waits for the operator to write Cancelled before it answers 202."""


def phase_of(job: ReportJob) -> Phase:
    return Phase(status_of(job).get("phase", Phase.PENDING))


@dataclass(frozen=True, slots=True)
class Cancelled:
    job: ReportJob
    """The job as last seen: Cancelled, another terminal phase (it finished first), or not
    terminal yet (the operator has not written the outcome within the wait)."""


async def cancel(
    store: JobStore, cache: Cache | None, job: ReportJob, *, wait_seconds: float = 60
) -> Cancelled | None:
    """Ask for `job` (not terminal) to end Cancelled; None when it is gone meanwhile."""
    name = name_of(job)
    uid = metadata_of(job).get("uid")
    asked: ReportJob | None
    if uid is None:  # known only from its claim: its ReportJob is being created
        try:
            asked = (await store.create(with_cancel(job))).obj
        except AlreadyExists:
            current = (await store.get(name)).obj
            asked = current and await store.request_cancel(name, uid=metadata_of(current)["uid"])
    else:
        asked = await store.request_cancel(name, uid=str(uid))
    if asked is None:
        return None
    latest = asked
    if cache is not None and cache.ready():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(CANCEL_WAIT_SECONDS, wait_seconds)):
                async for latest in versions(cache, asked):  # noqa: B007 - the last one counts
                    pass
    return Cancelled(job=latest)
