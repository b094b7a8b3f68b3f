"""The dedup protocol of docs/design.md ("Submission"), over any JobStore.

An object's window shard holds its open claim, if any. A submission reads the shard; if the
object's claim is open at the server time of that read, the answer is its job. Otherwise it
claims the window by writing the shard with the resourceVersion it read (or by creating the
shard, which is never deleted), and the API server lets exactly one such write win. The winner
creates the job the claim names; anyone who later finds the claim without its job creates the
same job, so a crash in between loses nothing. Nothing here depends on how long a request
takes between being stamped, admitted and committed.
"""

from dataclasses import dataclass

from reportjobs_gateway.manifests import build_reportjob, build_window_shard
from reportjobs_gateway.ports import (
    AlreadyExists,
    JobStore,
    ReportJob,
    Stale,
    StoreUnavailable,
    WindowShard,
)
from reportjobs_model.window import Claim, entry_key, open_claim, pruned, shard_name

MAX_ROUNDS = 8
"""Lost claims in a row before giving up (each loss means another write made progress)."""


@dataclass(frozen=True, slots=True)
class Submitted:
    job: ReportJob
    created: bool
    """True for the one submission that claimed the window (answered 201)."""


class SubmissionGaveUp(StoreUnavailable):
    """No stable answer after MAX_ROUNDS rounds."""


async def submit(
    store: JobStore,
    *,
    object_id: str,
    timeout_seconds: int,
    window_seconds: int,
    max_rounds: int = MAX_ROUNDS,
) -> Submitted:
    """Answer with the job whose window covers now, or claim the window for a new job."""
    shard, key = shard_name(object_id), entry_key(object_id)
    for _ in range(max_rounds):
        read = await store.get_window(shard)
        now, data = read.server_time, (read.obj or {}).get("data") or {}
        claim = open_claim(data, key=key, now=now)
        if claim is not None:
            job = await _job_of(store, object_id=object_id, claim=claim)
            if job is not None:
                return Submitted(job=job, created=False)
            continue
        claim = Claim.new(
            object_id=object_id,
            now=now,
            window_seconds=window_seconds,
            timeout_seconds=timeout_seconds,
        )
        version = None if read.obj is None else str(read.obj["metadata"]["resourceVersion"])
        body = build_window_shard(
            name=shard,
            data={**pruned(data, now=now), key: claim.to_entry()},
            resource_version=version,
        )
        if await _written(store, body, create=version is None):
            job = await _job_of(store, object_id=object_id, claim=claim, known_new=True)
            if job is not None:
                return Submitted(job=job, created=True)
    raise SubmissionGaveUp(f"no stable answer for the submission after {max_rounds} rounds")


async def _written(store: JobStore, body: WindowShard, *, create: bool) -> bool:
    """Create the shard, or replace the version read; False when another write came first."""
    try:
        if create:
            await store.create_window(body)
        else:
            await store.replace_window(body)
    except (AlreadyExists, Stale):
        return False
    return True


async def _job_of(
    store: JobStore, *, object_id: str, claim: Claim, known_new: bool = False
) -> ReportJob | None:
    """The job a claim names, created (idempotently: same name, same spec) if it is missing.

    `known_new` skips the first read: the claim was just won, so the job is not there yet."""
    if not known_new:
        found = await store.get(claim.job_name)
        if found.obj is not None:
            return found.obj
    try:
        return (await store.create(build_reportjob(object_id=object_id, claim=claim))).obj
    except AlreadyExists:
        return (await store.get(claim.job_name)).obj
