"""The operator runs active/standby on a Lease; a takeover keeps jobs flowing."""

from __future__ import annotations

import time

from kubernetes import client

from tests.e2e.conftest import DeployRelease
from tests.e2e.support.jobs import wait_terminal
from tests.e2e.support.kube import Cluster
from tests.e2e.support.polling import wait_until


def lease_holder(cluster: Cluster, namespace: str) -> str | None:
    leases = client.CoordinationV1Api(cluster.api).list_namespaced_lease(namespace).items
    holders = [lease.spec.holder_identity for lease in leases if lease.spec.holder_identity]
    return holders[0] if len(holders) == 1 else None


def test_standby_operator_takes_over_when_the_leader_dies(
    deploy_release: DeployRelease, cluster: Cluster
) -> None:
    release = deploy_release(operator={"replicas": 2, "leaseDurationSeconds": 10})
    gateway, namespace = release.gateway, release.namespace
    leader = wait_until(lambda: lease_holder(cluster, namespace), timeout=60, what="a leader")
    operators = {p.metadata.name for p in cluster.pods(namespace, "operator")}
    assert leader in operators, (leader, operators)
    assert len(operators) == 2  # one leads, one stands by

    before = gateway.submit("before-takeover")
    assert wait_terminal(gateway, before.body["job_id"])["status"] == "Succeeded"

    killed_at = time.monotonic()
    cluster.force_delete_pod(namespace, leader)
    new_leader = wait_until(
        lambda: (h := lease_holder(cluster, namespace)) and h != leader and h,
        timeout=120,
        interval=0.5,
        what="a new lease holder",
    )
    takeover = time.monotonic() - killed_at
    print(f"operator takeover: {takeover:.1f}s (lease duration 10s), {leader} -> {new_leader}")
    # The survivor or the Deployment's replacement pod, whichever renews first, leads now.
    current = {p.metadata.name for p in cluster.pods(namespace, "operator")}
    assert new_leader in current - {leader}

    after = gateway.submit("after-takeover")
    assert after.status == 201
    assert wait_terminal(gateway, after.body["job_id"])["status"] == "Succeeded"
