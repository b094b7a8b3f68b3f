"""A 201 comes once the claim is written; the gateway creates the ReportJob right after. When a
gateway dies in between, the claim in its window shard is all there is of the accepted job:
whoever finds it completes it. Here the shard is written as such a gateway leaves it (a claim,
no ReportJob), and the job is completed once, by the operator's sweep or by a GET, and runs."""

from __future__ import annotations

import time
from typing import Any

from kubernetes import client

from reportjobs_model.timestamps import format_unix
from reportjobs_model.window import Claim, build_window_shard, entry_key, shard_name
from tests.e2e.conftest import DeployRelease
from tests.e2e.support.jobs import wait_terminal
from tests.e2e.support.kube import Cluster
from tests.e2e.support.polling import wait_until

RESYNC = 5


def _leave_a_claim(cluster: Cluster, namespace: str, object_id: str) -> Claim:
    """Write the object's claim into its shard, accepted now, and create no ReportJob."""
    claim = Claim.new(object_id=object_id, now=time.time(), window_seconds=300, timeout_seconds=60)
    name = shard_name(object_id)
    try:
        current = cluster.core.read_namespaced_config_map(name, namespace)
    except client.ApiException as error:
        if error.status != 404:
            raise
        body = build_window_shard(
            name=name, data={entry_key(object_id): claim.to_entry()}, resource_version=None
        )
        cluster.core.create_namespaced_config_map(namespace, body)
        return claim
    data: dict[str, Any] = {**(current.data or {}), entry_key(object_id): claim.to_entry()}
    body = build_window_shard(
        name=name, data=data, resource_version=current.metadata.resource_version
    )
    cluster.core.replace_namespaced_config_map(name, namespace, body)
    return claim


def test_a_claim_left_without_its_reportjob_is_completed_once_and_runs(
    deploy_release: DeployRelease, cluster: Cluster
) -> None:
    release = deploy_release(operator={"resyncSeconds": RESYNC})
    gateway, namespace = release.gateway, release.namespace

    # Nobody asks: the operator's sweep finds the claim without its job (at two sweeps in a
    # row) and creates it.
    left = _leave_a_claim(cluster, namespace, "left-behind")
    assert cluster.reportjob(namespace, left.job_name) is None
    found = wait_until(
        lambda: cluster.reportjob(namespace, left.job_name),
        timeout=20 * RESYNC,
        interval=0.5,
        what="the operator to create the ReportJob of the claim",
    )
    assert found["spec"]["objectId"] == "left-behind"
    assert found["spec"]["acceptedAt"] == format_unix(left.accepted_at)
    job = wait_terminal(gateway, left.job_name)
    assert job["status"] == "Succeeded", job
    assert job["attempts"] == 1
    # Still the object's job inside its window: a submission is answered with it.
    again = gateway.submit("left-behind")
    assert (again.status, again.body["job_id"]) == (200, left.job_name)

    # A user asks right away (the 201 came, the ReportJob did not): the GET completes it.
    asked = _leave_a_claim(cluster, namespace, "asked-for")
    answer = gateway.job(asked.job_name)
    assert answer.status == 200, answer.body
    assert answer.body["object_id"] == "asked-for"
    assert cluster.reportjob(namespace, asked.job_name) is not None
    assert wait_terminal(gateway, asked.job_name)["status"] == "Succeeded"

    # Each was created once and ran one batch Job; an id no claim names is still 404.
    names = sorted(rj["metadata"]["name"] for rj in cluster.reportjobs(namespace))
    assert names == sorted([left.job_name, asked.job_name])
    uids = cluster.job_uids(namespace)
    assert uids == {left.job_name: 1, asked.job_name: 1}, uids
    assert (
        gateway.job(asked.job_name[:-1] + ("1" if asked.job_name[-1] != "1" else "2")).status == 404
    )
