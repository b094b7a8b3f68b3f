"""Worker Jobs spread over nodes through the scheduler (needs a cluster with 2+ nodes for work)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import DeployRelease
from tests.e2e.support.jobs import wait_terminal
from tests.e2e.support.kube import Cluster
from tests.e2e.support.polling import wait_until


def schedulable_nodes(cluster: Cluster) -> list[str]:
    return [
        node.metadata.name
        for node in cluster.core.list_node().items
        if not node.spec.unschedulable
        and not any(t.effect == "NoSchedule" for t in node.spec.taints or [])
    ]


def test_worker_pods_spread_over_nodes(deploy_release: DeployRelease, cluster: Cluster) -> None:
    nodes = schedulable_nodes(cluster)
    if len(nodes) < 2:
        pytest.skip(
            f"spreading needs 2+ schedulable nodes; this cluster has {nodes} (the test bed "
            "has two unless REPORTJOBS_NODES=1; kind-config.yaml has two workers)"
        )
    release = deploy_release(job={"sleepMinSeconds": 6, "sleepMaxSeconds": 6})
    gateway, namespace = release.gateway, release.namespace
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda i: gateway.submit(f"spread-{i}"), range(6)))
    job_ids = [a.body["job_id"] for a in answers]

    def node_of(job_id: str) -> str | None:
        pods = cluster.worker_pods(namespace, job_id)
        return next((p.spec.node_name for p in pods if p.spec.node_name), None)

    placed = {
        wait_until(lambda j=job_id: node_of(j), timeout=120, what=f"{job_id} to be scheduled")
        for job_id in job_ids
    }
    for job_id in job_ids:
        assert wait_terminal(gateway, job_id)["status"] == "Succeeded"
    assert len(placed) >= 2, placed
