"""`reportjobs-operator`: own a fair share of the shards (sharding.py) and run their work
(controller.py) until SIGTERM, then hand them over.

Active/active: every replica works, each on the shards whose Leases it holds.
"""

import asyncio
import logging
import signal
import sys

from reportjobs_kube.client import KubeClient
from reportjobs_model.callbacks import AddressPolicy
from reportjobs_operator.api_client import KubeApi
from reportjobs_operator.controller import Replica, ReplicaConfig
from reportjobs_operator.deliveries import Deliveries
from reportjobs_operator.health import Health, beat, serve_health
from reportjobs_operator.leases import LeaseTerms
from reportjobs_operator.manifests import WorkerTemplate
from reportjobs_operator.metrics import MEMBERS, SHARDS_TOTAL, swallowed
from reportjobs_operator.notifications import RetryPolicy
from reportjobs_operator.reconcile import Policy
from reportjobs_operator.settings import OperatorConfig
from reportjobs_operator.sharding import ShardLeases, ShardOwner
from reportjobs_operator.webhooks import WebhookSender

log = logging.getLogger(__name__)

EXIT_FAILURE = 1


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
    """Own shards until SIGTERM/SIGINT, then hand every one over; the process's exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    client = await KubeClient.connect(
        timeout_seconds=config.api_timeout_seconds,
        user_agent=f"reportjobs-operator/{config.pod_name}",
    )
    sender = WebhookSender(
        secret=config.webhook_secret,
        policy=AddressPolicy.of(
            allowed_cidrs=config.callback_allowed_cidrs,
            allowed_hosts=config.callback_allowed_hosts,
            blocked_cidrs=config.callback_blocked_cidrs,
        ),
        timeout_seconds=config.notify_timeout_seconds,
    )
    deliveries = Deliveries(
        sender=sender,
        policy=RetryPolicy(
            max_attempts=config.notify_max_attempts,
            backoff_seconds=config.notify_backoff_seconds,
        ),
        concurrency=config.notify_concurrency,
        reporter=config.pod_name,
    )
    replica = Replica(
        client=client,
        config=ReplicaConfig(
            namespace=config.namespace,
            shards=config.shards,
            policy=policy_of(config),
            workers=config.workers,
            resync_seconds=config.resync_seconds,
            identity=config.pod_name,
            deliveries=deliveries,
        ),
    )
    owner = ShardOwner(
        api=KubeApi(client=client, namespace=config.namespace),
        leases=ShardLeases(
            namespace=config.namespace, prefix=config.lease_name, shards=config.shards
        ),
        terms=LeaseTerms(identity=config.pod_name, duration_seconds=config.lease_duration_seconds),
        work=replica,
    )
    health = Health(
        identity=config.pod_name,
        held=replica.held,
        synced=replica.synced,
        members=lambda: owner.members,
    )
    SHARDS_TOTAL.set(config.shards)
    MEMBERS.set_function(lambda: len(owner.members))
    server = serve_health(health=health, port=config.health_port)
    heartbeat = asyncio.create_task(beat(health))
    sweep = asyncio.create_task(replica.sweep(stop))
    code = 0
    try:
        await owner.run(stop)
    except Exception:  # noqa: BLE001 (swallowed logs it)
        swallowed(log, "the operator failed", where="serve")
        code = EXIT_FAILURE
    finally:
        stop.set()
        try:
            await sweep
        except Exception:  # noqa: BLE001 (swallowed logs it)
            # it catches its own failures: this one is a bug
            swallowed(log, "the window sweep's task failed", where="window_sweep_task")
        heartbeat.cancel()
        await sender.close()
        await client.close()
        server.shutdown()
    return code


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", force=True
    )
    config = OperatorConfig()
    sys.exit(asyncio.run(serve(config)))
