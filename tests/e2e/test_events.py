"""Kubernetes Events tell a ReportJob's story (`kubectl describe rj`): Accepted, JobCreated,
Started and Succeeded for a job that ran; TimedOut as a Warning for one that ran out of time;
Cancelled for one cancelled (tests/e2e/test_cancel.py makes one)."""

from __future__ import annotations

import subprocess

from tests.e2e.conftest import DeployRelease
from tests.e2e.support.jobs import wait_terminal
from tests.e2e.support.kube import Cluster, kubectl_binary
from tests.e2e.support.polling import wait_until


def _events(cluster: Cluster, namespace: str, name: str) -> dict[str, str]:
    """reason -> type of the Events about the ReportJob `name`."""
    found = cluster.core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.kind=ReportJob,involvedObject.name={name}"
    ).items
    return {event.reason: event.type for event in found}


def test_events_tell_the_story_of_a_job(
    deploy_release: DeployRelease, cluster: Cluster, kubeconfig: str
) -> None:
    release = deploy_release()
    gateway, namespace = release.gateway, release.namespace
    ran = gateway.submit("told").body["job_id"]
    late = gateway.submit("told-late", timeout_seconds=1).body["job_id"]  # sleeps 2-4 s
    assert wait_terminal(gateway, ran)["status"] == "Succeeded"
    assert wait_terminal(gateway, late)["status"] == "TimedOut"
    story = {"Accepted": "Normal", "JobCreated": "Normal", "Started": "Normal"}
    wait_until(
        lambda: _events(cluster, namespace, ran) == {**story, "Succeeded": "Normal"},
        timeout=60,
        what="the Events of the job that ran",
    )
    wait_until(
        lambda: _events(cluster, namespace, late).get("TimedOut") == "Warning",
        timeout=60,
        what="a TimedOut Warning",
    )
    described = subprocess.run(
        [kubectl_binary(), "--kubeconfig", kubeconfig, "-n", namespace, "describe", "rj", ran],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    for reason in ("Accepted", "JobCreated", "Started", "Succeeded"):
        assert reason in described, described
    print(f"\nkubectl describe rj {ran} (events):\n{described[described.find('Events:') :]}")
