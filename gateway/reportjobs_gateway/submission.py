"""The dedup protocol of docs/design.md ("Submission"), over any JobStore.

An object's window shard holds its open claim, if any. A submission reads the shard; if the
object's claim is open at the server time of that read, the answer is its job. Otherwise it
claims the window by writing the shard with the resourceVersion it read (or by creating the
shard, which is never deleted), and the API server lets exactly one such write win. The winner
creates the job the claim names; anyone who later finds the claim without its job creates the
same job, so a crash in between loses nothing. Nothing here depends on how long a request
takes between being stamped, admitted and committed.

With a `cache` (caches.py), two fast paths come first, each falling back to the API path:
a claim open at the latest the server's time can be now is the object's claim, so its cached
job is the answer (0 requests); and a new claim can be written on the cached version of the
shard, accepted at a second the server's clock has certainly reached, provided that is later
than any removal of the object's claim the cache may have missed (2 requests). The API server
still decides: a write based on a stale cached version fails, and the API path takes over.
docs/design.md, "The cached paths", has the argument.
"""

from dataclasses import dataclass
from enum import StrEnum

from reportjobs_gateway.manifests import build_reportjob, build_window_shard
from reportjobs_gateway.ports import (
    AlreadyExists,
    Cache,
    JobStore,
    ReportJob,
    Stale,
    StoreUnavailable,
    WindowShard,
)
from reportjobs_model.window import Claim, entry_key, open_claim, pruned, shard_name

MAX_ROUNDS = 8
"""Lost claims in a row before giving up (each loss means another write made progress)."""


class Path(StrEnum):
    """How a submission was answered (a metrics label)."""

    CACHED = "cached"
    """A deduplicated answer from the caches: no API request."""
    CACHED_SHARD = "cached_shard"
    """The shard's version came from the cache (a claim written on it, or a cached open claim
    whose job was read from the API)."""
    API = "api"
    """The shard was read from the API."""


@dataclass(frozen=True, slots=True)
class Submitted:
    job: ReportJob
    created: bool
    """True for the one submission that claimed the window (answered 201)."""
    path: Path = Path.API


class SubmissionGaveUp(StoreUnavailable):
    """No stable answer after MAX_ROUNDS rounds."""


async def submit(
    store: JobStore,
    *,
    object_id: str,
    timeout_seconds: int,
    window_seconds: int,
    cache: Cache | None = None,
    max_rounds: int = MAX_ROUNDS,
) -> Submitted:
    """Answer with the job whose window covers now, or claim the window for a new job."""
    shard, key = shard_name(object_id), entry_key(object_id)
    if cache is not None and cache.ready():
        fast = await _from_cache(
            store,
            cache,
            object_id=object_id,
            timeout_seconds=timeout_seconds,
            window_seconds=window_seconds,
        )
        if fast is not None:
            return fast
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


async def _from_cache(
    store: JobStore, cache: Cache, *, object_id: str, timeout_seconds: int, window_seconds: int
) -> Submitted | None:
    """The cached paths; None when they cannot answer (then the API path does)."""
    now = cache.now()
    if now is None:
        return None
    shard, key = shard_name(object_id), entry_key(object_id)
    cached = cache.window(shard)
    data = (cached or {}).get("data") or {}
    claim = open_claim(data, key=key, now=now.latest)
    if claim is not None:  # not closed even at the latest now can be: still the object's claim
        job = cache.job(claim.job_name)
        if job is not None:
            return Submitted(job=job, created=False, path=Path.CACHED)
        job = await _job_of(store, object_id=object_id, claim=claim)
        return None if job is None else Submitted(job=job, created=False, path=Path.CACHED_SHARD)
    if now.latest - now.earliest + 1 > window_seconds:
        return None  # too loose: the claim's window might not reach the present
    accepted = now.accepted_second
    if open_claim(data, key=key, now=accepted) is not None:
        return None  # open at the earliest, closed at the latest the server's time can be
    if not cache.claim_time_allowed(shard, key, accepted):
        return None  # a removal of the object's claim may be too recent to order after it
    claim = Claim.new(
        object_id=object_id,
        now=accepted,
        window_seconds=window_seconds,
        timeout_seconds=timeout_seconds,
    )
    version = None if cached is None else str(cached["metadata"]["resourceVersion"])
    body = build_window_shard(
        name=shard,
        data={**pruned(data, now=accepted), key: claim.to_entry()},
        resource_version=version,
    )
    if not await _written(store, body, create=version is None):
        return None  # the cache was behind, or another write came first
    job = await _job_of(store, object_id=object_id, claim=claim, known_new=True)
    return None if job is None else Submitted(job=job, created=True, path=Path.CACHED_SHARD)


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
