"""Safety net: reconcile every ReportJob periodically (catches missed events, retention), and
prune closed claims from the dedup window shards.

kopf timers would put kopf's finalizer on every ReportJob, so deletions would hang while no
operator runs; this loop needs nothing on the objects.
"""

import asyncio
import logging

from reportjobs_model.reportjob import name_of
from reportjobs_operator.aio import wait_for_flag
from reportjobs_operator.ports import ReconcileApi, WindowApi
from reportjobs_operator.reconcile import Reconciler
from reportjobs_operator.windows import sweep_window_shards

log = logging.getLogger(__name__)


async def resync_once(*, reconciler: Reconciler, api: ReconcileApi, namespace: str) -> None:
    """Two list calls, then a reconcile of each ReportJob that is not settled."""
    reportjobs = await api.list_reportjobs(namespace=namespace)
    jobs = set(await api.list_job_names(namespace=namespace))
    for reportjob in reportjobs:
        name = name_of(reportjob)
        if reconciler.is_settled(reportjob, has_job=name in jobs):
            continue
        try:
            await reconciler.reconcile(namespace=namespace, name=name)
        except Exception:
            log.exception("resync of %s/%s failed", namespace, name)


async def resync_forever(
    *,
    reconciler: Reconciler,
    api: ReconcileApi,
    windows: WindowApi,
    namespace: str,
    interval: float,
    stop: asyncio.Event,
) -> None:
    while not await wait_for_flag(stop, interval):
        try:
            await resync_once(reconciler=reconciler, api=api, namespace=namespace)
        except Exception:
            log.exception("resync of namespace %s failed", namespace)
        try:
            await sweep_window_shards(api=windows, namespace=namespace)
        except Exception:
            log.exception("sweeping the dedup window shards of namespace %s failed", namespace)
