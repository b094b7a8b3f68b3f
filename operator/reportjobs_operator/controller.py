"""What a replica runs for the shards it holds: per shard an index (three watches), a work queue
and reconcile workers; per replica the window sweep over the shards it holds.

A shard's work starts when sharding.py takes its Lease and stops when it lets go; every write
of the shard's work is fenced (api_client.py). The resync sweeps the dedup window shards
(windows.py: one list per interval; claims left without their ReportJob are completed, closed
claims pruned, and ReportJobs whose claim is gone released to retention), then re-queues every
ReportJob that is not settled, from the indexes (no requests): it catches what no event
announces, like retention and the start deadline.
"""

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from reportjobs_kube.client import KubeClient
from reportjobs_kube.informer import running
from reportjobs_model.reportjob import is_accepted
from reportjobs_model.shards import selector_of, shard_of
from reportjobs_operator.api_client import KubeApi
from reportjobs_operator.deliveries import Deliveries, ShardAccess
from reportjobs_operator.index import Index
from reportjobs_operator.leases import Fence
from reportjobs_operator.metrics import (
    INDEX_OBJECTS,
    JOB_LAG,
    QUEUE_DEPTH,
    RECONCILE_SECONDS,
    RECONCILES,
    SWEPT,
    swallowed,
)
from reportjobs_operator.ports import Fenced
from reportjobs_operator.reconcile import Policy, Reconciler
from reportjobs_operator.sharding import wait_for_flag
from reportjobs_operator.windows import WindowSweep
from reportjobs_operator.workqueue import WorkQueue

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 5.0
"""How long a shard's reconciles in flight may take to finish when it is let go (their writes
are fenced meanwhile)."""


RESTART_SECONDS = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaConfig:
    namespace: str
    shards: int
    policy: Policy
    workers: int
    """Reconciles at once in this replica, over all its shards."""
    resync_seconds: float
    identity: str = ""
    """This replica's name, on the Events it records."""
    deliveries: Deliveries | None = None
    """Notifications to callback URLs (None: none are sent)."""


@dataclass(slots=True)
class Shard:
    """One held shard's work."""

    number: int
    fence: Fence
    index: Index
    queue: WorkQueue
    reconciler: Reconciler
    access: ShardAccess | None = None
    task: "asyncio.Task[None] | None" = None
    synced: bool = False
    stopping: asyncio.Event = field(default_factory=asyncio.Event)


class Replica:
    """Implements sharding.ShardWork."""

    def __init__(
        self,
        *,
        client: KubeClient,
        config: ReplicaConfig,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._client = client
        self._config = config
        self._on_change = on_change
        self._shards: dict[int, Shard] = {}
        self._slots = asyncio.Semaphore(config.workers)
        self._sweep = WindowSweep(
            api=KubeApi(client=client, namespace=config.namespace),
            indexed=self._indexed,
            accepted=self._accepted,
            owns=self.owns,
        )
        QUEUE_DEPTH.set_function(lambda: sum(len(s.queue) for s in self._shards.values()))
        for position, kind in enumerate(("reportjob", "job", "pod")):
            INDEX_OBJECTS.labels(kind).set_function(functools.partial(self._count, position))

    def held(self) -> list[int]:
        return sorted(self._shards)

    def synced(self) -> list[int]:
        return sorted(number for number, shard in self._shards.items() if shard.synced)

    def owns(self, name: str) -> bool:
        """Whether this replica acts on the ReportJob of this name now (its shard is held,
        fenced and synced)."""
        shard = self._shards.get(shard_of(name, shards=self._config.shards))
        return shard is not None and shard.synced and shard.fence.holds()

    def _indexed(self) -> set[str]:
        names: set[str] = set()
        for shard in self._shards.values():
            if shard.synced:
                names |= shard.index.reportjob_names()
        return names

    def _accepted(self, name: str) -> bool:
        """Whether the ReportJob of this name is in an index, accepted (reconcile.py)."""
        shard = self._shards.get(shard_of(name, shards=self._config.shards))
        reportjob = None if shard is None else shard.index.reportjob(name)
        return reportjob is not None and is_accepted(reportjob)

    def _count(self, position: int) -> int:
        """Objects of one kind over the shards' indexes (position in Index.informers)."""
        return sum(len(s.index.informers[position]) for s in self._shards.values())

    # sharding.ShardWork
    def start(self, shard: int, fence: Fence) -> None:
        config = self._config
        queue = WorkQueue()
        index = Index(
            client=self._client,
            namespace=config.namespace,
            selector=selector_of(shard, shards=config.shards),
            wake=queue.add,
        )
        api = KubeApi(client=self._client, namespace=config.namespace, holds=fence.holds)
        reconciler = Reconciler(
            api=api,
            cache=index,
            policy=config.policy,
            released=self._sweep.released,
            on_job_created=JOB_LAG.observe,
            reporter=config.identity,
        )
        work = Shard(
            number=shard,
            fence=fence,
            index=index,
            queue=queue,
            reconciler=reconciler,
            access=ShardAccess(cache=index, api=api, holds=fence.holds, wake=queue.add),
        )
        self._shards[shard] = work
        work.task = asyncio.create_task(self._run(work))

    async def stop(self, shard: int) -> None:
        work = self._shards.pop(shard, None)
        self._on_change()
        if work is None or work.task is None:
            return
        work.stopping.set()
        done, _ = await asyncio.wait({work.task}, timeout=STOP_GRACE_SECONDS)
        if not done:
            work.task.cancel()
        try:
            await work.task
        except asyncio.CancelledError:
            pass  # cancelled above, past its grace
        except Exception:  # noqa: BLE001 (swallowed logs it)
            # _run catches its own failures: this one is a bug
            swallowed(log, "the work of shard %d failed as it stopped", shard, where="shard_stop")

    async def _run(self, shard: Shard) -> None:
        """Serve the shard until it is let go; a failure (a bug: the API's errors are retried
        inside) starts it over."""
        while not shard.stopping.is_set():
            try:
                await self._serve(shard)
            except Exception:  # noqa: BLE001 (swallowed logs it)
                swallowed(
                    log,
                    "the work of shard %d failed; starting it over",
                    shard.number,
                    where="shard_work",
                )
                shard.synced = False
                await wait_for_flag(shard.stopping, RESTART_SECONDS)

    async def _serve(self, shard: Shard) -> None:
        async with running(*shard.index.informers) as watching:
            shard.synced = True
            self._on_change()
            log.info(
                "shard %d synced: %d ReportJobs, %d Jobs, %d pods",
                shard.number,
                len(shard.index.reportjobs),
                len(shard.index.jobs),
                len(shard.index.pods),
            )
            workers = [asyncio.create_task(self._work(shard)) for _ in range(self._config.workers)]
            tasks = [*workers, asyncio.create_task(self._requeue(shard))]
            stopping = asyncio.create_task(shard.stopping.wait())
            try:
                done, _ = await asyncio.wait(
                    [stopping, *watching, *tasks], return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for task in [stopping, *tasks]:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if stopping not in done:
                for task in done:
                    task.result()  # its exception, if it has one
                raise RuntimeError(f"a watch or worker of shard {shard.number} ended by itself")

    async def _work(self, shard: Shard) -> None:
        queue, reconciler = shard.queue, shard.reconciler
        while True:
            name = await queue.get()
            started = time.perf_counter()
            failed = False
            try:
                async with self._slots:
                    await reconciler.reconcile(name=name)
            except Fenced:
                log.info(
                    "shard %d is no longer held; %s left to its next owner", shard.number, name
                )
            except Exception:  # noqa: BLE001 (swallowed logs it)
                failed = True
                swallowed(
                    log, "reconcile of %s failed; retrying after a backoff", name, where="reconcile"
                )
            finally:
                RECONCILES.labels("error" if failed else "ok").inc()
                RECONCILE_SECONDS.observe(time.perf_counter() - started)
                queue.done(name, failed=failed)
            deliveries = self._config.deliveries
            if deliveries is not None and shard.access is not None and shard.fence.holds():
                deliveries.consider(name, access=shard.access)

    async def _requeue(self, shard: Shard) -> None:
        while True:
            await asyncio.sleep(self._config.resync_seconds)
            for name in shard.reconciler.unsettled(shard.index.reportjobs):
                shard.queue.add(name)

    async def sweep(self, stop: asyncio.Event) -> None:
        """The window sweep, once per resync interval, over the shards held, until stopped."""
        while not await wait_for_flag(stop, self._config.resync_seconds):
            if not self._shards:
                continue
            try:
                swept = await self._sweep.run()
                SWEPT.labels("pruned").inc(swept.pruned)
                SWEPT.labels("lost").inc(swept.lost)
                SWEPT.labels("completed").inc(swept.completed)
            except Exception:  # noqa: BLE001 (swallowed logs it)
                swallowed(log, "sweeping the dedup window shards failed", where="window_sweep")
