"""What the lease holder runs: the index's watches, reconcile workers, and periodic resync.

The resync sweeps the dedup window shards (windows.py: one list per interval; claims left
without their ReportJob are completed, closed claims pruned, and ReportJobs whose claim is gone
released to retention), then re-queues every ReportJob that is not settled, from the index (no
requests): it catches what no event announces, like retention and the start deadline.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from reportjobs_kube.client import KubeClient
from reportjobs_kube.informer import running
from reportjobs_operator.api_client import KubeApi
from reportjobs_operator.index import Index
from reportjobs_operator.metrics import (
    INDEX_OBJECTS,
    JOB_LAG,
    QUEUE_DEPTH,
    RECONCILE_SECONDS,
    RECONCILES,
    SWEPT,
)
from reportjobs_operator.reconcile import Policy, Reconciler
from reportjobs_operator.windows import WindowSweep
from reportjobs_operator.workqueue import WorkQueue

log = logging.getLogger(__name__)


async def _work(queue: WorkQueue, reconciler: Reconciler) -> None:
    while True:
        name = await queue.get()
        started = time.perf_counter()
        failed = False
        try:
            await reconciler.reconcile(name=name)
        except Exception:
            failed = True
            log.exception("reconcile of %s failed; retrying after a backoff", name)
        finally:
            RECONCILES.labels("error" if failed else "ok").inc()
            RECONCILE_SECONDS.observe(time.perf_counter() - started)
            queue.done(name, failed=failed)


async def _resync(
    queue: WorkQueue, reconciler: Reconciler, index: Index, sweep: WindowSweep, interval: float
) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            swept = await sweep.run()
            SWEPT.labels("pruned").inc(swept.pruned)
            SWEPT.labels("completed").inc(swept.completed)
        except Exception:
            log.exception("sweeping the dedup window shards failed")
        for name in reconciler.unsettled(index.reportjobs):
            queue.add(name)


def _count(index: Index) -> None:
    for kind, informer in (
        ("reportjob", index.reportjobs),
        ("job", index.jobs),
        ("pod", index.pods),
    ):
        INDEX_OBJECTS.labels(kind).set_function(informer.__len__)


async def run_controller(
    stop: asyncio.Event,
    *,
    client: KubeClient,
    namespace: str,
    policy: Policy,
    workers: int,
    resync_seconds: float,
    on_synced: Callable[[], None],
) -> None:
    """Run until `stop` is set."""
    queue = WorkQueue()
    index = Index(client=client, namespace=namespace, wake=queue.add)
    api = KubeApi(client=client, namespace=namespace)
    sweep = WindowSweep(api=api, indexed=index.reportjob_names)
    reconciler = Reconciler(
        api=api,
        cache=index,
        policy=policy,
        released=sweep.released,
        on_job_created=JOB_LAG.observe,
    )
    QUEUE_DEPTH.set_function(queue.__len__)
    _count(index)
    async with running(*index.informers) as watching:
        log.info(
            "index synced: %d ReportJobs, %d Jobs, %d pods",
            len(index.reportjobs),
            len(index.jobs),
            len(index.pods),
        )
        on_synced()
        tasks = [asyncio.create_task(_work(queue, reconciler)) for _ in range(workers)]
        tasks.append(asyncio.create_task(_resync(queue, reconciler, index, sweep, resync_seconds)))
        stopping = asyncio.create_task(stop.wait())
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
            raise RuntimeError("a watch or worker of the operator ended by itself")
