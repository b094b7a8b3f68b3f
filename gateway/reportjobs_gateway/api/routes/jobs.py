"""Submitting and reading jobs."""

import asyncio
import contextlib
import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.exceptions import RequestValidationError

from reportjobs_gateway.callback_check import callback_refusal
from reportjobs_gateway.cancellation import cancel, phase_of
from reportjobs_gateway.changes import versions
from reportjobs_gateway.deps import CacheDep, CallbackPolicyDep, CreatesDep, SettingsDep, StoreDep
from reportjobs_gateway.metrics import CLAIM_SECONDS, LOST_WRITES, SUBMISSION_PATHS
from reportjobs_gateway.reads import find_job
from reportjobs_gateway.schemas import (
    CancelConflictPublic,
    ErrorPublic,
    JobList,
    JobPublic,
    JobSubmission,
    ObjectId,
    ValidationErrorPublic,
)
from reportjobs_gateway.settings import GatewaySettings
from reportjobs_gateway.submission import submit, unlisted_claimed_job
from reportjobs_gateway.views import newest_first, to_public
from reportjobs_model import labels
from reportjobs_model.naming import object_hash
from reportjobs_model.phase import Phase
from reportjobs_model.reportjob import name_of, spec_of

router = APIRouter(prefix="/jobs", tags=["jobs"])

MAX_WAIT_SECONDS = 60

_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ValidationErrorPublic, "description": "Invalid request"},
    503: {"model": ErrorPublic, "description": "Kubernetes API unavailable"},
}
# A schema-valid body may still be refused: no schema can say where a URL's host points.
CALLBACK_REFUSED = (
    "Invalid request. Also for a body the schema accepts whose `callback_url` is refused (its "
    "issue's `loc` ends in `callback_url`): for its form (not an http or https URL, "
    "credentials, a malformed host name or IP literal) or for its address: its host does not "
    "resolve, or resolves to an address that is not public (loopback, private, link-local, "
    "shared, multicast, documentation or another special-purpose range) or to the cluster's "
    "own ranges, unless the release allows it (callback allowedCIDRs, allowedHosts)."
)
_SUBMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"description": "A new job was created"},
    200: {"model": JobPublic, "description": "Deduplicated: the job created within the window"},
    **_ERRORS,
    422: {"model": ValidationErrorPublic, "description": CALLBACK_REFUSED},
}


def _timeout_of(submission: JobSubmission, settings: GatewaySettings) -> int:
    if submission.timeout_seconds is None:
        return settings.default_timeout_seconds
    if submission.timeout_seconds > settings.max_timeout_seconds:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "timeout_seconds"),
                    "msg": f"Input should be less than or equal to {settings.max_timeout_seconds}",
                    "type": "less_than_equal",
                }
            ]
        )
    return submission.timeout_seconds


def _json(job: JobPublic, *, status_code: int = status.HTTP_200_OK) -> Response:
    """The job as JSON, serialized once (a Response is not validated again by FastAPI)."""
    return Response(job.model_dump_json(), status_code=status_code, media_type="application/json")


_SUBMIT = {
    "status_code": status.HTTP_201_CREATED,
    "responses": _SUBMIT_RESPONSES,
    "response_model": JobPublic,
}


@router.post("", **_SUBMIT)  # type: ignore[arg-type]
@router.put("", **_SUBMIT)  # type: ignore[arg-type]
async def submit_job(
    submission: JobSubmission,
    store: StoreDep,
    cache: CacheDep,
    settings: SettingsDep,
    creates: CreatesDep,
    callbacks: CallbackPolicyDep,
) -> Response:
    """Start a report job for `object_id`, unless one was started within the window.

    A new job is answered once its claim is written; its ReportJob is created right after."""
    timeout_seconds = _timeout_of(submission, settings)
    if submission.callback_url is not None:
        refused = await callback_refusal(submission.callback_url, policy=callbacks)
        if refused is not None:
            raise RequestValidationError(
                [{"loc": ("body", "callback_url"), "msg": refused, "type": "value_error"}]
            )
    started = time.perf_counter()
    outcome = await submit(
        store,
        object_id=submission.object_id,
        timeout_seconds=timeout_seconds,
        window_seconds=settings.window_seconds,
        cache=cache,
        callback_url=submission.callback_url,
    )
    SUBMISSION_PATHS.labels(outcome.path.value).inc()
    LOST_WRITES.inc(outcome.lost_writes)
    if outcome.created:
        CLAIM_SECONDS.labels(outcome.delay).observe(time.perf_counter() - started)
    if outcome.to_create is not None:
        creates.start(outcome.to_create, store=store)
    job = to_public(outcome.job)
    answer = _json(job, status_code=201 if outcome.created else 200)
    answer.headers["Location"] = f"/jobs/{job.job_id}"
    return answer


@router.get("", responses=_ERRORS)
async def list_jobs(object_id: Annotated[ObjectId, Query()], store: StoreDep) -> JobList:
    """Jobs of `object_id`, newest first (its newest may be a claim whose ReportJob is still
    being created: it is listed too)."""
    found = await store.list(label_selector=f"{labels.OBJECT_HASH}={object_hash(object_id)}")
    mine = [rj for rj in found if spec_of(rj).get("objectId") == object_id]
    claimed = await unlisted_claimed_job(
        store, object_id=object_id, listed={name_of(rj) for rj in mine}
    )
    if claimed is not None:
        mine.append(claimed)
    return JobList(items=[to_public(rj) for rj in newest_first(mine)])


WaitSeconds = Annotated[
    int | None,
    Query(
        ge=1,
        le=MAX_WAIT_SECONDS,
        description="Answer as soon as the job is terminal, or after this many seconds with its "
        "current state (woken by the gateway's watch of the jobs).",
    ),
]


@router.get("/{job_id}", responses={404: {"model": ErrorPublic}, **_ERRORS})
async def get_job(
    job_id: str, store: StoreDep, cache: CacheDep, settings: SettingsDep, wait: WaitSeconds = None
) -> JobPublic:
    """One job by its id; with `wait`, once it is terminal or after `wait` seconds."""
    found = await find_job(store, cache, job_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"job {job_id!r} not found")
    if wait is not None and cache is not None and cache.ready():
        latest = found
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(wait, settings.max_wait_seconds)):
                async for latest in versions(cache, found):  # noqa: B007 - the last one counts
                    pass
        found = latest
    return to_public(found)


_CANCEL_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": JobPublic, "description": "The job is Cancelled (now, or already)"},
    202: {"model": JobPublic, "description": "Cancel requested; the job will end Cancelled"},
    404: {"model": ErrorPublic, "description": "No such job"},
    409: {"model": CancelConflictPublic, "description": "The job finished otherwise"},
    503: _ERRORS[503],
}


def _finished_otherwise(job: JobPublic) -> Response:
    body = CancelConflictPublic(detail=f"job {job.job_id} already ended {job.status}", job=job)
    return Response(body.model_dump_json(), status_code=409, media_type="application/json")


@router.delete("/{job_id}", response_model=JobPublic, responses=_CANCEL_RESPONSES)
async def cancel_job(
    job_id: str, store: StoreDep, cache: CacheDep, settings: SettingsDep
) -> Response:
    """Cancel a Pending or Running job: it ends `Cancelled`, its pod is stopped. A cancelled job
    stays the job of its window."""
    found = await find_job(store, cache, job_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"job {job_id!r} not found")
    if not phase_of(found).is_terminal:
        cancelled = await cancel(store, cache, found, wait_seconds=settings.max_wait_seconds)
        if cancelled is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"job {job_id!r} not found")
        found = cancelled.job
    job = to_public(found)
    if job.status is Phase.CANCELLED:
        return _json(job)
    if phase_of(found).is_terminal:
        return _finished_otherwise(job)
    return _json(job, status_code=status.HTTP_202_ACCEPTED)
