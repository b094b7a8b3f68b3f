"""The dedup protocol of docs/design.md ("Submission"), over any JobStore.

An object's window shard holds its open claim, if any. A submission reads the shard; if the
object's claim is open at the server time of that read, the answer is its job. Otherwise it
claims the window by a JSON patch of the shard that tests what it read of it (its epoch and the
object's entry: `window.claim_write`; a replace carrying the resourceVersion read when the shard
has no epoch yet), or by creating the shard, which is never deleted; the API server lets exactly
one such write of an object win, and writes of other objects of the shard do not get in its way.
The winner is answered 201 at once: the written claim is the accepted job. Its ReportJob is
created right after (`Submitted.to_create`, by the caller, in the background); anyone who finds
the claim without its job creates the same job (`_job_of`, `claimed_job`), and so does the
operator's sweep, so a crash in between loses nothing. Nothing here depends on how long a
request takes between being stamped, admitted and committed.

With a `cache` (caches.py), two fast paths come first, each falling back to the API path:
a claim open at the latest the server's time can be now is the object's claim, so its cached
job is the answer (0 requests); and a new claim can be written on the cached version of the
shard, accepted at a second the server's clock has certainly reached, provided that is later
than any removal of the object's claim the cache may have missed (2 requests). The API server
still decides: a write based on a cached version that is stale for the object (a claim of the
object, or a removal, came in between) fails. Such a write that lost is tried again once the
cache moved on, and the API path takes over when it does not or the write loses again.
docs/design.md, "The cached paths", has the argument.
"""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from reportjobs_gateway.ports import (
    AlreadyExists,
    Cache,
    JobStore,
    ReportJob,
    Stale,
    StoreUnavailable,
    WindowShard,
)
from reportjobs_model.naming import is_job_name
from reportjobs_model.reportjob import build_reportjob, is_accepted
from reportjobs_model.window import (
    Claim,
    awaits_its_job,
    claim_of,
    claim_write,
    created_shard,
    entry_key,
    open_claim,
    place_of_job,
    shard_name,
)

MAX_ROUNDS = 8
"""Lost claims in a row before giving up (each loss means another write made progress)."""

CACHED_WRITES = 3
"""Cached writes of a submission, each on the version that beat the one before, before the API
path takes over."""


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
    lost_writes: int = 0
    """Claims written on a version that was no longer current for the object (a claim of it, or
    a removal from its shard, came first)."""

    @property
    def delay(self) -> str:
        """What delayed the answer besides its own requests (a metrics label): lost (a write
        lost), or none."""
        return "lost" if self.lost_writes else "none"

    @property
    def to_create(self) -> ReportJob | None:
        """The ReportJob the caller creates after answering (the claim's winner), else None."""
        return self.job if self.created else None


class SubmissionGaveUp(StoreUnavailable):
    """No stable answer after MAX_ROUNDS rounds."""


class EarlierJobNotAccepted(StoreUnavailable):
    """The object's closed claim names a job that its operator has not accepted yet (it checks
    that the claim names it, docs/design.md "Deleting a job"): the claim cannot be replaced
    before, so the submission is answered 503, to be retried. Only while the operator is down
    or far behind."""


async def submit(
    store: JobStore,
    *,
    object_id: str,
    timeout_seconds: int,
    window_seconds: int,
    cache: Cache | None = None,
    max_rounds: int = MAX_ROUNDS,
    callback_url: str | None = None,
) -> Submitted:
    """Answer with the job whose window covers now, or claim the window for a new job."""
    shard, key = shard_name(object_id), entry_key(object_id)
    lost = 0
    if cache is not None and cache.ready():
        fast, lost = await _retrying_cached(
            cache,
            shard=shard,
            attempt=lambda: _from_cache(
                store,
                cache,
                object_id=object_id,
                timeout_seconds=timeout_seconds,
                window_seconds=window_seconds,
                callback_url=callback_url,
            ),
        )
        if fast is not None:
            return replace(fast, lost_writes=lost)
    for _ in range(max_rounds):
        read = await store.get_window(shard)
        now, data = read.server_time, (read.obj or {}).get("data") or {}
        claim = open_claim(data, key=key, now=now)
        if claim is not None:
            job = await _job_of(store, object_id=object_id, claim=claim)
            if job is not None:
                return Submitted(job=job, created=False, lost_writes=lost)
            continue
        previous = _unfinished(data, key=key, cache=cache)
        # Its job first, accepted: the new claim takes its place in the shard.
        if previous is not None:
            earlier = await _job_of(store, object_id=object_id, claim=previous)
            if earlier is None:
                continue
            if not is_accepted(earlier):
                raise EarlierJobNotAccepted(
                    f"the object's previous job {previous.job_name} is not accepted by the "
                    "operator yet; retry shortly"
                )
        claim = Claim.new(
            object_id=object_id,
            now=now,
            window_seconds=window_seconds,
            timeout_seconds=timeout_seconds,
            callback_url=callback_url,
        )
        if await _written(store, name=shard, read=read.obj, key=key, entry=claim.to_entry()):
            job = build_reportjob(object_id=object_id, claim=claim)
            return Submitted(job=job, created=True, lost_writes=lost)
        lost += 1
    raise SubmissionGaveUp(f"no stable answer for the submission after {max_rounds} rounds")


@dataclass(frozen=True, slots=True)
class _Lost:
    """A cached write that another write beat (or the cache was behind)."""

    based_on: str | None


async def _retrying_cached(
    cache: Cache, *, shard: str, attempt: Callable[[], Awaitable[Submitted | _Lost | None]]
) -> tuple[Submitted | None, int]:
    """Run the cached paths (`attempt`), again while a write lost and the cached shard moved on
    from the version it was based on: the answer (None: the API path answers), and how many
    cached writes lost."""
    lost = 0
    for _ in range(CACHED_WRITES):
        outcome = await attempt()
        if not isinstance(outcome, _Lost):
            return outcome, lost
        lost += 1
        if not await cache.moved_on(shard, from_version=outcome.based_on):
            break
    return None, lost


async def _from_cache(
    store: JobStore,
    cache: Cache,
    *,
    object_id: str,
    timeout_seconds: int,
    window_seconds: int,
    callback_url: str | None,
) -> Submitted | _Lost | None:
    """The cached paths on the cache as it is; None when they cannot answer (then the API path
    does), _Lost when the claim's write lost."""
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
    if _unfinished(data, key=key, cache=cache) is not None:
        return None  # a closed claim whose job may not exist: the API path completes it
    if not cache.claim_time_allowed(shard, key, accepted):
        return None  # a removal of the object's claim may be too recent to order after it
    claim = Claim.new(
        object_id=object_id,
        now=accepted,
        window_seconds=window_seconds,
        timeout_seconds=timeout_seconds,
        callback_url=callback_url,
    )
    if not await _written(store, name=shard, read=cached, key=key, entry=claim.to_entry()):
        version = None if cached is None else str(cached["metadata"]["resourceVersion"])
        return _Lost(based_on=version)  # the cache was behind, or another write came first
    job = build_reportjob(object_id=object_id, claim=claim)
    return Submitted(job=job, created=True, path=Path.CACHED_SHARD)


def _unfinished(data: Mapping[str, str], *, key: str, cache: Cache | None) -> Claim | None:
    """The object's closed claim, if its job is not known to exist, accepted (it may never have
    been created): a new claim must not take its place before."""
    previous = claim_of(data[key]) if key in data else None
    if previous is None or not awaits_its_job(previous, exists=_known_to(cache)):
        return None
    return previous


def _known_to(cache: Cache | None) -> Callable[[str], bool]:
    """Whether a job is known to exist, accepted by its operator (in the cache): then its closed
    claim may be replaced."""
    if cache is None or not cache.ready():
        return lambda _: False
    return lambda name: (job := cache.job(name)) is not None and is_accepted(job)


async def _written(
    store: JobStore, *, name: str, read: WindowShard | None, key: str, entry: str
) -> bool:
    """Write the object's claim: create the shard when it was read absent, else patch (or
    replace) the version read (`claim_write`); False when another write came first."""
    try:
        if read is None:
            await store.create_window(created_shard(name=name, key=key, entry=entry))
            return True
        write = claim_write(read, key=key, entry=entry)
        if write.patch is not None:
            version = str(read["metadata"]["resourceVersion"])
            await store.patch_window(name, write.patch, based_on=version)
        elif write.replacement is not None:
            await store.replace_window(write.replacement)
    except (AlreadyExists, Stale):
        return False
    return True


async def _job_of(store: JobStore, *, object_id: str, claim: Claim) -> ReportJob | None:
    """The job a claim names, created (idempotently: same name, same spec) if it is missing."""
    found = await store.get(claim.job_name)
    if found.obj is not None:
        return found.obj
    return await create_job(store, build_reportjob(object_id=object_id, claim=claim))


async def create_job(store: JobStore, body: ReportJob) -> ReportJob | None:
    """Create the job a claim names; if it exists already (another creator), read it."""
    try:
        return (await store.create(body)).obj
    except AlreadyExists:
        return (await store.get(str(body["metadata"]["name"]))).obj


async def claimed_job(store: JobStore, *, job_id: str) -> ReportJob | None:
    """A job that is not (yet) a ReportJob: its claim was written and answered 201, and its
    ReportJob is still being created, or its creator died. The claim is read from the API (a
    claim may be newer than any cache), and the job is created from it. None when no claim
    names `job_id` (an unknown job, or one whose claim is gone)."""
    if not is_job_name(job_id):
        return None
    claim = await _claim_in(store, *place_of_job(job_id))
    if claim is None or claim.job_name != job_id or claim.object_id is None:
        return None
    return await _job_of(store, object_id=claim.object_id, claim=claim)


async def unlisted_claimed_job(
    store: JobStore, *, object_id: str, listed: set[str]
) -> ReportJob | None:
    """The job the object's claim names when a list of its ReportJobs (`listed`, names) missed
    it: answered 201, its ReportJob still being created (or its creator died). Read after the
    list, from the API; the job is created from the claim if it is missing."""
    claim = await _claim_in(store, shard_name(object_id), entry_key(object_id))
    if claim is None or claim.object_id != object_id or claim.job_name in listed:
        return None
    return await _job_of(store, object_id=object_id, claim=claim)


async def _claim_in(store: JobStore, shard: str, key: str) -> Claim | None:
    """The claim under `key` in the shard as the API has it now (open or closed)."""
    read = await store.get_window(shard)
    data = (read.obj or {}).get("data") or {}
    return claim_of(data[key]) if key in data else None
