"""When deliveries run: one task per due job, at most `concurrency` at once per replica, apart
from reconciling (a slow or dead receiver costs only its own retries).

After each reconcile the replica asks `consider(name)`: a job whose notification is due starts
a delivery; one due later gets a timer that queues it again then. A delivery checks that its
shard is still held right before it sends, records the outcome in the status (a write with the
resourceVersion, fenced, retried from a fresh read on a conflict), tells it in an Event, and
queues the job again for the next attempt or to settle.
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from reportjobs_model.reportjob import name_of, spec_of, status_of
from reportjobs_model.timestamps import utc_now
from reportjobs_operator.events import build_event
from reportjobs_operator.metrics import swallowed
from reportjobs_operator.notifications import (
    DELIVERED,
    Attempt,
    RetryPolicy,
    after,
    due_at,
    notification_of,
    payload,
    webhook_id,
)
from reportjobs_operator.ports import Cache, Conflict, Fenced, Obj, ReconcileApi
from reportjobs_operator.webhooks import WebhookSender

log = logging.getLogger(__name__)

RECORD_TRIES = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class ShardAccess:
    """What a delivery of one shard's job reads and writes through."""

    cache: Cache
    api: ReconcileApi
    holds: Callable[[], bool]
    wake: Callable[[str], None]


class Deliveries:
    def __init__(
        self,
        *,
        sender: WebhookSender,
        policy: RetryPolicy,
        concurrency: int,
        reporter: str = "",
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._sender = sender
        self._policy = policy
        self._slots = asyncio.Semaphore(concurrency)
        self._reporter = reporter
        self._clock = clock
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def __len__(self) -> int:
        return len(self._in_flight)

    def consider(self, name: str, *, access: ShardAccess) -> None:
        reportjob = access.cache.reportjob(name)
        due = None if reportjob is None else due_at(reportjob)
        if due is None or name in self._in_flight:
            return
        wait = (due - self._clock()).total_seconds()
        loop = asyncio.get_running_loop()
        if wait > 0:
            if (timer := self._timers.pop(name, None)) is not None:
                timer.cancel()
            self._timers[name] = loop.call_later(wait, access.wake, name)
            return
        self._in_flight[name] = loop.create_task(self._deliver(name, access))

    async def _deliver(self, name: str, access: ShardAccess) -> None:
        try:
            async with self._slots:
                reportjob = access.cache.reportjob(name)
                due = None if reportjob is None else due_at(reportjob)
                if reportjob is None or due is None or due > self._clock():
                    return
                if not access.holds():
                    return  # let go meanwhile: its new owner delivers
                now = self._clock()
                attempt = await self._sender.send(
                    url=str(spec_of(reportjob)["callbackUrl"]),
                    webhook_id=webhook_id(reportjob),
                    body=payload(reportjob, now=now),
                    now=now,
                )
                await self._record(name, attempt, access)
        except Fenced:
            log.info("delivery of %s left to the shard's next owner", name)
        except Exception:  # noqa: BLE001 (swallowed logs it)
            swallowed(log, "delivery of %s failed; it is tried again", name, where="delivery")
        finally:
            self._in_flight.pop(name, None)
            access.wake(name)

    async def _record(self, name: str, attempt: Attempt, access: ShardAccess) -> None:
        """Write the attempt's outcome, from a fresh read after each conflict; after
        RECORD_TRIES conflicts it is logged, counted and left (the delivery is then due again:
        the receiver may get it twice, under the same webhook-id)."""
        lost: Conflict | None = None
        for _ in range(RECORD_TRIES):
            reportjob = access.cache.reportjob(name)
            if reportjob is None:
                return
            notification = after(
                notification_of(reportjob) or {}, attempt, now=self._clock(), policy=self._policy
            )
            status = {**status_of(reportjob), "notification": notification}
            try:
                written = await access.api.replace_reportjob_status(
                    body={**reportjob, "status": status}
                )
            except Conflict as exc:
                lost = exc
                fresh = await access.api.get_reportjob(name=name)
                if fresh is None:
                    return
                access.cache.remember(fresh)
                continue
            access.cache.remember(written)
            await self._tell(written, notification["state"], attempt, access)
            return
        swallowed(
            log,
            "the outcome of a delivery of %s was not recorded: %d conflicting writes",
            name,
            RECORD_TRIES,
            where="delivery_record",
            cause=lost,
        )

    async def _tell(
        self, reportjob: Obj, state: str, attempt: Attempt, access: ShardAccess
    ) -> None:
        if state == DELIVERED:
            reason, message = "NotificationDelivered", "Delivered the outcome to its callback"
        elif state == "Failed":
            reason, message = "NotificationFailed", f"Gave up delivering: {attempt.error}"
        else:
            return
        body = build_event(
            reportjob=reportjob,
            reason=reason,
            message=message,
            now=self._clock(),
            reporter=self._reporter,
        )
        try:
            await access.api.create_event(body=body)
        except Conflict:
            return
        except Fenced:
            raise  # the delivery's own handling: left to the shard's next owner
        except Exception:  # noqa: BLE001 (swallowed logs it)
            swallowed(
                log,
                "could not record the %s Event of %s",
                reason,
                name_of(reportjob),
                where="delivery_event",
            )
