"""The reconcile steps of docs/design.md, serialized per ReportJob."""

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from reportjobs_model.phase import Phase
from reportjobs_model.reportjob import (
    ReportJobBody,
    is_deleting,
    name_of,
    status_of,
    uid_of,
    window_end_unix,
)
from reportjobs_model.timestamps import parse_rfc3339, utc_now
from reportjobs_operator.job_pod_fields import is_controlled_by
from reportjobs_operator.locks import KeyedLocks
from reportjobs_operator.manifests import WorkerTemplate, build_job
from reportjobs_operator.ports import Conflict, Obj, ReconcileApi
from reportjobs_operator.status import build_status

log = logging.getLogger(__name__)

MAX_PASSES = 5
_SYSTEM_RANDOM = random.SystemRandom()


@dataclass(frozen=True, slots=True)
class Policy:
    sleep_min_seconds: int
    sleep_max_seconds: int
    retention_seconds: int
    worker: WorkerTemplate


class Reconciler:
    def __init__(
        self,
        *,
        api: ReconcileApi,
        policy: Policy,
        draw: Callable[[int, int], int] = _SYSTEM_RANDOM.randint,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._api = api
        self._policy = policy
        self._draw = draw
        self._clock = clock
        self._locks = KeyedLocks()

    def is_settled(self, reportjob: Obj, *, has_job: bool) -> bool:
        """Nothing to do until retention ends: terminal, Job gone (a resync may skip it)."""
        status = status_of(reportjob)
        if has_job or not Phase(status.get("phase", Phase.PENDING)).is_terminal:
            return False
        return not _retention_over(
            reportjob, retention_seconds=self._policy.retention_seconds, now=self._clock()
        )

    async def reconcile(self, *, namespace: str, name: str) -> None:
        """Bring one ReportJob, its Job and its status in line; retried on write conflicts."""
        async with self._locks.hold((namespace, name)):
            for _ in range(MAX_PASSES):
                one_pass = _Pass(
                    api=self._api,
                    policy=self._policy,
                    draw=self._draw,
                    now=self._clock(),
                    namespace=namespace,
                )
                try:
                    await one_pass.run(name)
                except Conflict:
                    log.info("conflict while reconciling %s/%s; starting over", namespace, name)
                    continue
                return
            log.warning("gave up on %s/%s after %d conflicts", namespace, name, MAX_PASSES)


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
    """One attempt at the steps, against fresh reads, at one moment."""

    api: ReconcileApi
    policy: Policy
    draw: Callable[[int, int], int]
    now: datetime
    namespace: str

    async def run(self, name: str) -> None:
        reportjob = await self.api.get_reportjob(namespace=self.namespace, name=name)
        if reportjob is None or is_deleting(reportjob):
            return
        if status_of(reportjob).get("sleepSeconds") is None:
            reportjob = await self._draw_sleep(reportjob)
        job = await self._owned_job(reportjob)
        terminal = Phase(status_of(reportjob).get("phase", Phase.PENDING)).is_terminal
        if job is None and not terminal:
            job = await self._create_job(reportjob)
        reportjob = await self._update_status(reportjob, job)
        if Phase(status_of(reportjob)["phase"]).is_terminal:
            await self._clean_up(reportjob, job)

    async def _write_status(self, reportjob: Obj, status: dict[str, Any]) -> Obj:
        """Optimistic write: the body carries the resourceVersion we read."""
        body = {**reportjob, "status": status}
        return await self.api.replace_reportjob_status(namespace=self.namespace, body=body)

    async def _draw_sleep(self, reportjob: Obj) -> Obj:
        """Step 2: the sleep is drawn once and persisted before any Job exists."""
        seconds = self.draw(self.policy.sleep_min_seconds, self.policy.sleep_max_seconds)
        status = {**status_of(reportjob), "sleepSeconds": seconds}
        status.setdefault("phase", Phase.PENDING.value)
        return await self._write_status(reportjob, status)

    async def _owned_job(self, reportjob: Obj) -> Obj | None:
        """The Job of this ReportJob; a same-named Job of another owner is deleted."""
        job = await self.api.get_job(namespace=self.namespace, name=name_of(reportjob))
        if job is None or is_controlled_by(job, owner_uid=uid_of(reportjob)):
            return job
        log.info("deleting Job %s of an earlier owner", name_of(job))
        await self.api.delete_job(namespace=self.namespace, name=name_of(job), uid=uid_of(job))
        return None

    async def _create_job(self, reportjob: Obj) -> Obj | None:
        """Step 3 (409: adopt the Job that exists, if it is ours)."""
        body = build_job(reportjob=reportjob, worker=self.policy.worker)
        try:
            return await self.api.create_job(namespace=self.namespace, body=body)
        except Conflict:
            return await self._owned_job(reportjob)

    async def _update_status(self, reportjob: Obj, job: Obj | None) -> Obj:
        """Step 4."""
        pods: list[Obj] = []
        if job is not None:
            found = await self.api.list_worker_pods(
                namespace=self.namespace, reportjob=name_of(reportjob)
            )
            pods = [pod for pod in found if is_controlled_by(pod, owner_uid=uid_of(job))]
        status = build_status(reportjob=reportjob, job=job, pods=pods, now=self.now)
        if status == status_of(reportjob):
            return reportjob
        return await self._write_status(reportjob, status)

    async def _clean_up(self, reportjob: Obj, job: Obj | None) -> None:
        """Steps 5 and 6."""
        if job is not None:
            await self.api.delete_job(namespace=self.namespace, name=name_of(job), uid=uid_of(job))
        if _retention_over(
            reportjob, retention_seconds=self.policy.retention_seconds, now=self.now
        ):
            log.info("retention over: deleting ReportJob %s", name_of(reportjob))
            await self.api.delete_reportjob(
                namespace=self.namespace, name=name_of(reportjob), uid=uid_of(reportjob)
            )
