"""`reportjobs-operator`: stand by for the Lease, then run the controller until stopped or the
lease is lost.

Exits non-zero when the lease is lost or the controller fails, so the pod restarts as a standby.
"""

import asyncio
import functools
import logging
import signal
import sys

from reportjobs_kube.client import KubeClient
from reportjobs_operator.api_client import KubeApi
from reportjobs_operator.controller import run_controller
from reportjobs_operator.health import Health, beat, serve_health
from reportjobs_operator.leadership import Elector, LeaseTerms, lead
from reportjobs_operator.manifests import WorkerTemplate
from reportjobs_operator.metrics import LEADING
from reportjobs_operator.reconcile import Policy
from reportjobs_operator.settings import OperatorConfig


def policy_of(config: OperatorConfig) -> Policy:
    return Policy(
        sleep_min_seconds=config.sleep_min_seconds,
        sleep_max_seconds=config.sleep_max_seconds,
        retention_seconds=config.retention_seconds,
        worker=WorkerTemplate(
            image=config.worker_image,
            pull_policy=config.worker_image_pull_policy,
            cpu_request=config.worker_cpu_request,
            memory_request=config.worker_memory_request,
            memory_limit=config.worker_memory_limit,
            uid=config.worker_uid,
            backoff_limit=config.backoff_limit,
            service_account=config.worker_service_account,
            startup_allowance_seconds=config.startup_allowance_seconds,
            start_deadline_seconds=config.start_deadline_seconds,
        ),
    )


async def serve(config: OperatorConfig) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    health = Health()
    server = serve_health(health=health, port=config.health_port)
    heartbeat = asyncio.create_task(beat(health))
    client = await KubeClient.connect(timeout_seconds=config.api_timeout_seconds)
    terms = LeaseTerms(
        namespace=config.namespace,
        name=config.lease_name,
        identity=config.pod_name,
        duration_seconds=config.lease_duration_seconds,
    )

    def on_leading(leading: bool) -> None:
        health.set_leading(leading)
        LEADING.set(1 if leading else 0)

    def on_synced() -> None:
        health.synced = True

    active = functools.partial(
        run_controller,
        client=client,
        namespace=config.namespace,
        policy=policy_of(config),
        workers=config.workers,
        resync_seconds=config.resync_seconds,
        on_synced=on_synced,
    )
    try:
        return await lead(
            elector=Elector(api=KubeApi(client=client, namespace=config.namespace), terms=terms),
            terms=terms,
            run_active=active,
            stop=stop,
            on_leading=on_leading,
        )
    finally:
        heartbeat.cancel()
        await client.close()
        server.shutdown()


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", force=True
    )
    config = OperatorConfig()
    sys.exit(asyncio.run(serve(config)))
