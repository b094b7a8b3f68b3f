"""The reconcile steps of docs/design.md: level-triggered, from the index, one key at a time.

Reads come from the index (the watches' cache); writes go to the API server and carry the
resourceVersion they were based on, so a stale index can cause a conflict, never a wrong write.
A conflict is retried from a fresh read. The work queue (workqueue.py) guarantees that one key
is reconciled by one worker at a time.
"""

import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from reportjobs_model.crd import FINALIZER
from reportjobs_model.phase import Phase
from reportjobs_model.reportjob import (
    ReportJobBody,
    finalizers_of,
    holds_its_claim,
    is_accepted,
    is_cancel_requested,
    is_deleting,
    name_of,
    spec_of,
    status_of,
    uid_of,
    window_end_unix,
)
from reportjobs_model.timestamps import parse_rfc3339, utc_now
from reportjobs_model.window import names_its_job, place_of_job
from reportjobs_operator.events import ACCEPTED, JOB_CREATED, build_event, reason_of_phase
from reportjobs_operator.job_pod_fields import (
    has_exited,
    is_controlled_by,
    is_finished,
    is_stopping,
    sleep_seconds_of,
)
from reportjobs_operator.job_pod_fields import is_deleting as is_going
from reportjobs_operator.manifests import WorkerTemplate, build_job
from reportjobs_operator.metrics import swallowed
from reportjobs_operator.notifications import is_pending
from reportjobs_operator.ports import Cache, Conflict, Fenced, Obj, ReconcileApi, Refused
from reportjobs_operator.status import build_status, worth_writing

log = logging.getLogger(__name__)

MAX_PASSES = 5
_SYSTEM_RANDOM = random.SystemRandom()


@dataclass(frozen=True, slots=True)
class Policy:
    sleep_min_seconds: int
    sleep_max_seconds: int
    retention_seconds: int
    worker: WorkerTemplate


def _phase(reportjob: ReportJobBody) -> Phase:
    return Phase(status_of(reportjob).get("phase", Phase.PENDING))


def _no_lag(_: float) -> None:
    return None


class Reconciler:
    def __init__(
        self,
        *,
        api: ReconcileApi,
        cache: Cache,
        policy: Policy,
        released: Callable[[str], bool],
        draw: Callable[[int, int], int] = _SYSTEM_RANDOM.randint,
        clock: Callable[[], datetime] = utc_now,
        on_job_created: Callable[[float], None] = _no_lag,
        reporter: str = "",
    ) -> None:
        self._api = api
        self._cache = cache
        self._policy = policy
        self._released = released
        self._draw = draw
        self._clock = clock
        self._on_job_created = on_job_created
        self._reporter = reporter

    def is_settled(self, reportjob: Obj) -> bool:
        """Nothing to do until retention ends: terminal, its Job finished (or gone) and its pods
        gone (a resync may skip it). A deleted one waits for its claim's release, which no
        event announces."""
        if is_deleting(reportjob) and holds_its_claim(reportjob):
            return False
        if not _phase(reportjob).is_terminal or is_pending(reportjob):
            return False
        name = name_of(reportjob)
        if _needs_cleanup(self._cache.job(name), self._cache.pods_of(name)):
            return False
        return not _retention_over(
            reportjob, retention_seconds=self._policy.retention_seconds, now=self._clock()
        )

    def unsettled(self, reportjobs: Iterable[Obj]) -> list[str]:
        """The names a resync reconciles (from the index: no requests)."""
        return [name_of(reportjob) for reportjob in reportjobs if not self.is_settled(reportjob)]

    async def reconcile(self, *, name: str) -> None:
        """Bring one ReportJob, its Job and its status in line; conflicts retried afresh."""
        reportjob = self._cache.reportjob(name)
        for _ in range(MAX_PASSES):
            one_pass = _Pass(
                api=self._api,
                cache=self._cache,
                policy=self._policy,
                released=self._released,
                draw=self._draw,
                now=self._clock(),
                on_job_created=self._on_job_created,
                reporter=self._reporter,
            )
            try:
                await one_pass.run(reportjob)
            except Conflict:
                log.info("conflict while reconciling %s; reading it again", name)
                reportjob = await self._api.get_reportjob(name=name)
                if reportjob is not None:
                    self._cache.remember(reportjob)
                continue
            return
        log.warning("gave up on %s after %d conflicts", name, MAX_PASSES)


def _live(pods: Iterable[Obj]) -> list[Obj]:
    """Pods not asked to go yet (a terminating pod's exit comes back as a change)."""
    return [pod for pod in pods if not is_going(pod)]


def _exited(pods: Iterable[Obj]) -> list[Obj]:
    return [pod for pod in pods if has_exited(pod)]


def _needs_cleanup(job: Obj | None, pods: Iterable[Obj]) -> bool:
    """A Job to stop, or pods to delete: exited ones, or ones not asked to go yet."""
    return job is not None and (
        not is_finished(job) or any(has_exited(pod) or not is_going(pod) for pod in pods)
    )


def _retention_over(reportjob: ReportJobBody, *, retention_seconds: int, now: datetime) -> bool:
    """Finished longer than the retention ago, and its dedup window is over: a submission inside
    the window re-creates a missing job (docs/design.md), so it must not be deleted before."""
    finished = status_of(reportjob).get("finishedAt")
    retention = timedelta(seconds=retention_seconds)
    return (
        finished is not None
        and parse_rfc3339(finished) + retention < now
        and window_end_unix(reportjob) <= now.timestamp()
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Pass:
    """One attempt at the steps, from the index, at one moment."""

    api: ReconcileApi
    cache: Cache
    policy: Policy
    released: Callable[[str], bool]
    draw: Callable[[int, int], int]
    now: datetime
    on_job_created: Callable[[float], None]
    reporter: str

    async def run(self, reportjob: Obj | None) -> None:
        if reportjob is None:
            return
        name = name_of(reportjob)
        deleting = is_deleting(reportjob)
        of_before = not holds_its_claim(reportjob)  # created by a gateway of before D1 and D2
        if of_before:
            if deleting:  # nothing holds it: it goes, and the garbage collector takes its Job
                return
            if not self.released(name):
                reportjob = await self._hold(reportjob)
        ended = _phase(reportjob).is_terminal or is_cancel_requested(reportjob) or deleting
        checked = of_before or is_accepted(reportjob) or ended
        if not checked and not await self._claimed(reportjob):
            log.warning(
                "ReportJob %s was created again after its claim was gone (it had been "
                "deleted): deleting it without running it",
                name,
            )
            # Only the version read: one accepted since (a status write whose answer was lost,
            # not yet in the index) is left alone, and its change comes back as an event.
            await self.api.delete_reportjob(
                name=name,
                uid=uid_of(reportjob),
                resource_version=reportjob["metadata"].get("resourceVersion"),
            )
            return
        if "phase" not in status_of(reportjob) and not deleting:
            spec = spec_of(reportjob)
            await self._tell(
                reportjob,
                ACCEPTED,
                f"Accepted: object {spec.get('objectId')!r}, timeout {spec.get('timeoutSeconds')}"
                f" s, dedup window {spec.get('windowSeconds')} s",
            )
        job = await self._owned(reportjob, self.cache.job(name))
        refused: Refused | None = None
        if job is None and not ended:
            try:
                job = await self._create_job(reportjob)
            except Refused as refusal:  # accepted all the same (below), then tried again
                refused = refusal
        sleep = status_of(reportjob).get("sleepSeconds")
        if sleep is None and job is not None:
            sleep = sleep_seconds_of(job)
        pods = []
        if job is not None:
            owner = uid_of(job)
            pods = [
                pod for pod in self.cache.pods_of(name) if is_controlled_by(pod, owner_uid=owner)
            ]
        status = build_status(
            reportjob=reportjob, job=job, pods=pods, sleep_seconds=sleep, now=self.now
        )
        if refused is not None:
            status["message"] = f"Pending: the cluster refused its Job ({refused}); tried again"
        if worth_writing(status_of(reportjob), status):
            before = _phase(reportjob)
            reportjob = await self._write_status(reportjob, status)
            reason = reason_of_phase(Phase(status["phase"]))
            if Phase(status["phase"]) != before and reason is not None:
                await self._tell(reportjob, reason, str(status.get("message", reason)))
        if Phase(status["phase"]).is_terminal:
            await self._clean_up(reportjob, job)
        if refused is not None:
            raise refused  # the work queue tries again after a backoff

    async def _claimed(self, reportjob: Obj) -> bool:
        """Whether its claim names it, on a read made now (after it was created). A claim is
        removed only once its job is accepted (windows.py) or, deleted, held until the claim is
        gone: so a ReportJob not accepted yet whose claim is gone was created again, from a
        claim read before it went, after it had been deleted (docs/design.md, "Deleting a
        job")."""
        name = name_of(reportjob)
        shard = await self.api.get_window_shard(name=place_of_job(name)[0])
        return names_its_job(shard, job_name=name)

    async def _hold(self, reportjob: Obj) -> Obj:
        """Add the claim finalizer (to a ReportJob created without it)."""
        before = finalizers_of(reportjob)
        written = await self.api.set_reportjob_finalizers(
            name=name_of(reportjob),
            uid=uid_of(reportjob),
            before=before,
            after=[*before, FINALIZER],
        )
        self.cache.remember(written)
        return written

    async def _let_go(self, reportjob: Obj) -> None:
        """Remove the claim finalizer of a deleted ReportJob whose claim is gone: it goes."""
        name, before = name_of(reportjob), finalizers_of(reportjob)
        log.info("ReportJob %s deleted and its claim gone: removing its finalizer", name)
        await self.api.set_reportjob_finalizers(
            name=name,
            uid=uid_of(reportjob),
            before=before,
            after=[finalizer for finalizer in before if finalizer != FINALIZER],
        )

    async def _write_status(self, reportjob: Obj, status: dict[str, Any]) -> Obj:
        """Optimistic write: the body carries the resourceVersion it was based on."""
        written = await self.api.replace_reportjob_status(body={**reportjob, "status": status})
        self.cache.remember(written)
        return written

    async def _owned(self, reportjob: Obj, job: Obj | None) -> Obj | None:
        """The Job if this ReportJob controls it; a same-named Job of another owner is deleted."""
        if job is None or is_controlled_by(job, owner_uid=uid_of(reportjob)):
            return job
        log.info("deleting Job %s of an earlier owner", name_of(job))
        await self.api.delete_job(name=name_of(job), uid=uid_of(job))
        self.cache.forget(job)
        return None

    async def _create_job(self, reportjob: Obj) -> Obj | None:
        """Step 2 and 3: the sleep is drawn once and persisted with the Job, which is created
        under the ReportJob's name exactly once (409: read the Job that exists and adopt it)."""
        sleep = status_of(reportjob).get("sleepSeconds")
        if sleep is None:
            sleep = self.draw(self.policy.sleep_min_seconds, self.policy.sleep_max_seconds)
        body = build_job(reportjob=reportjob, sleep_seconds=int(sleep), worker=self.policy.worker)
        try:
            job = await self.api.create_job(body=body)
        except Conflict:
            existing = await self.api.get_job(name=name_of(reportjob))
            if existing is None:
                raise  # deleted meanwhile: start over
            self.cache.remember(existing)
            return await self._owned(reportjob, existing)
        self.cache.remember(job)
        self.on_job_created(_seconds_between(reportjob, job))
        await self._tell(
            reportjob, JOB_CREATED, f"Created Job {name_of(job)}: the worker sleeps {sleep} s"
        )
        return job

    async def _tell(self, reportjob: Obj, reason: str, message: str) -> None:
        """An Event, at most once per reason (events.py); best effort: a failure is logged."""
        body = build_event(
            reportjob=reportjob,
            reason=reason,
            message=message,
            now=self.now,
            reporter=self.reporter,
        )
        try:
            await self.api.create_event(body=body)
        except Conflict:  # told already
            return
        except Fenced:
            raise
        except Exception:  # noqa: BLE001 (swallowed logs it)
            swallowed(
                log,
                "could not record the %s Event of %s",
                reason,
                name_of(reportjob),
                where="reconcile_event",
            )

    async def _clean_up(self, reportjob: Obj, job: Obj | None) -> None:
        """Steps 4 and 5. The Job is kept, finished, for as long as its ReportJob: its name
        stays taken, so a create sent late by a replica that lost the shard (docs/design.md,
        fencing) meets a conflict. A Job still active is stopped; the pods of a finished one are
        deleted, those that exited at once; the garbage collector deletes the Job with its
        ReportJob.

        A ReportJob is deleted only once the window sweep has seen its claim gone (windows.py:
        a claim without its ReportJob would be completed, and run again). One deleted by
        someone else stays, held by its finalizer, until then: a create of its name from its
        claim meets it (docs/design.md, "Deleting a job")."""
        name = name_of(reportjob)
        if job is not None and not is_finished(job):
            if not is_stopping(job):  # once: a pass before the Job controller's answer waits
                log.info("stopping the Job of %s, which ended before its Job did", name)
                self.cache.remember(await self.api.stop_job(name=name_of(job), uid=uid_of(job)))
            return  # the Job controller fails it and deletes its pods; its event comes back
        pods = self.cache.pods_of(name) if job is not None else []
        if exited := _exited(pods):  # at once: nothing runs in them
            await self.api.delete_pods_of(reportjob=name, exited=True)
            for pod in exited:  # gone now: a pass before their watch events sends no repeat
                self.cache.forget(pod)
        elif _live(pods):  # SIGTERM; each comes back exited, then goes at once
            await self.api.delete_pods_of(reportjob=name, exited=False)
        if is_deleting(reportjob):
            if self.released(name):
                await self._let_go(reportjob)
            return
        if _retention_over(
            reportjob, retention_seconds=self.policy.retention_seconds, now=self.now
        ) and self.released(name_of(reportjob)):
            log.info("retention over: deleting ReportJob %s", name_of(reportjob))
            await self.api.delete_reportjob(name=name_of(reportjob), uid=uid_of(reportjob))
            if holds_its_claim(reportjob):  # released: its finalizer goes in the same pass
                await self._let_go(reportjob)
            # Not in the index any more. (Forgetting one that stays, held by a finalizer, could
            # drop its deletion's event, which may come first: then no pass would let it go.)
            self.cache.forget(reportjob)


def _seconds_between(reportjob: Obj, job: Obj) -> float:
    """From the ReportJob's creation to its Job's (server stamps, whole seconds)."""
    created = reportjob["metadata"].get("creationTimestamp")
    made = job["metadata"].get("creationTimestamp")
    if not created or not made:
        return 0.0
    return (parse_rfc3339(made) - parse_rfc3339(created)).total_seconds()
