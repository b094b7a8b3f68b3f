"""What the lease holder runs: kopf (event-driven reconcile) and the periodic resync."""

import asyncio
import contextlib

import kopf

from reportjobs_operator.handlers import register
from reportjobs_operator.ports import ReconcileApi, WindowApi
from reportjobs_operator.reconcile import Reconciler
from reportjobs_operator.resync import resync_forever


async def run_active(
    stop_flag: asyncio.Event,
    *,
    reconciler: Reconciler,
    api: ReconcileApi,
    windows: WindowApi,
    namespace: str,
    resync_seconds: float,
) -> None:
    """Run until `stop_flag` is set (or kopf stops on a signal)."""
    registry = kopf.OperatorRegistry()
    register(registry)
    resync = asyncio.create_task(
        resync_forever(
            reconciler=reconciler,
            api=api,
            windows=windows,
            namespace=namespace,
            interval=resync_seconds,
            stop=stop_flag,
        )
    )
    try:
        await kopf.operator(
            registry=registry,
            memo=kopf.Memo(reconciler=reconciler),
            namespaces=[namespace],
            standalone=True,
            stop_flag=stop_flag,
        )
    finally:
        resync.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await resync
