"""The ReportJobs of won claims, created right after their 201 (in the background).

A submission that wins its claim is answered at once: the claim in its shard is the accepted
job. Its ReportJob is created here, retried while the API server is unavailable. Any other
error is not retried (another attempt would most likely meet it again): it is logged with its
cause and counted as "failed". If this process dies first, or every attempt fails, or one fails
otherwise, nothing is lost: whoever finds the claim without its job creates the same job (a
submission of the object, a GET of the job), and the operator's sweep creates it too
(docs/design.md, "Submission").
"""

import asyncio
import logging

from prometheus_client import Counter, Gauge

from reportjobs_gateway.ports import JobStore, ReportJob, StoreUnavailable
from reportjobs_gateway.submission import create_job

log = logging.getLogger(__name__)

IN_FLIGHT = Gauge(
    "reportjobs_gateway_background_creates_in_flight",
    "ReportJobs of won claims whose create has not finished yet",
)
CREATES = Counter(
    "reportjobs_gateway_background_creates",
    "ReportJobs of won claims created after the 201, by outcome: created, left (the API server "
    "was unavailable for every attempt) or failed (an unexpected error, not retried); the "
    "operator's sweep creates those left or failed",
    ["outcome"],
)
for _outcome in ("created", "left", "failed"):
    CREATES.labels(_outcome)


class BackgroundCreates:
    """Creates ReportJobs after their submissions were answered; `drain()` on shutdown."""

    def __init__(
        self, *, attempts: int = 16, backoff_seconds: float = 0.1, max_backoff_seconds: float = 5
    ) -> None:
        """By default, retries for about a minute (0.1 s doubling up to 5 s between attempts)."""
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._tasks: set[asyncio.Task[None]] = set()
        IN_FLIGHT.set_function(self.__len__)

    def start(self, body: ReportJob, *, store: JobStore) -> None:
        task = asyncio.create_task(self._create(body, store))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def __len__(self) -> int:
        """How many creates are in flight."""
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait for the creates in flight (a stopping gateway finishes what it answered)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _create(self, body: ReportJob, store: JobStore) -> None:
        """Create it, retrying while the API server is unavailable; any other error is logged,
        counted and not retried: the claim is left to the operator's sweep, which creates it."""
        name = body["metadata"]["name"]
        unavailable: StoreUnavailable | None = None
        for attempt in range(self._attempts):
            try:
                await create_job(store, body)
            except StoreUnavailable as exc:
                unavailable = exc
                log.info("creating ReportJob %s failed (attempt %d): %s", name, attempt + 1, exc)
                await asyncio.sleep(min(self._backoff * 2**attempt, self._max_backoff))
                continue
            except Exception:
                CREATES.labels("failed").inc()
                log.exception(
                    "creating ReportJob %s failed unexpectedly (attempt %d); not retried, its "
                    "claim is completed by the operator",
                    name,
                    attempt + 1,
                )
                return
            CREATES.labels("created").inc()
            return
        CREATES.labels("left").inc()
        log.warning(
            "ReportJob %s not created after %d attempts; its claim is completed by the operator",
            name,
            self._attempts,
            exc_info=unavailable,
        )
