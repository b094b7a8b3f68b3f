"""DELETE /jobs/{id} on the test bed: a Running and a just-submitted (Pending) job end
`Cancelled`, a second DELETE answers 200 with the cancelled job, a resubmission inside the
window returns it, and a job that finished otherwise answers 409.

The cancel is carried out by the operator, as the API server's audit log shows: after the
gateway's request (its patch of the ReportJob's spec.cancel), the operator's service account
stops the running job's Job, once (activeDeadlineSeconds 1); the Job controller, at that
deadline, fails the Job (DeadlineExceeded: its work cut short, not completed) and deletes its
pod. No clock bounds how long that takes: the order and the authors of the requests are the
property."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.e2e.conftest import DeployRelease
from tests.e2e.support.direct import DirectGateway, gateway_url
from tests.e2e.support.jobs import wait_status, wait_terminal
from tests.e2e.support.kube import Cluster
from tests.e2e.support.polling import wait_until
from tests.e2e.support.testbed import audit_events, audit_mark

JOB_CONTROLLER = "system:serviceaccount:kube-system:job-controller"


def _account(cluster: Cluster, namespace: str, component: str) -> str:
    pod = cluster.pods(namespace, component)[0]
    return f"system:serviceaccount:{namespace}:{pod.spec.service_account_name}"


def _requests(events: list[dict[str, Any]], who: str, verb: str, resource: str) -> list[str]:
    """Names (or, for a collection, the request URI) of the successful requests, in order."""
    found = []
    for e in sorted(events, key=lambda e: str(e["requestReceivedTimestamp"])):
        ref = e.get("objectRef") or {}
        if (
            e["user"]["username"] == who
            and e["verb"] == verb
            and ref.get("resource") == resource
            and not ref.get("subresource")
            and (e.get("responseStatus") or {}).get("code") in (200, 201)
        ):
            found.append(str(ref.get("name") or e.get("requestURI")))
    return found


def _order(events: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(who, verb, resource, name) of each successful write, in the order received."""
    return [
        (
            e["user"]["username"].rsplit(":", 1)[-1],
            e["verb"],
            (e.get("objectRef") or {}).get("resource", ""),
            (e.get("objectRef") or {}).get("name", ""),
        )
        for e in sorted(events, key=lambda e: str(e["requestReceivedTimestamp"]))
        if e["verb"] in ("create", "patch", "update", "delete", "deletecollection")
        and (e.get("responseStatus") or {}).get("code") in (200, 201)
        and not (e.get("objectRef") or {}).get("subresource")
        and (e.get("objectRef") or {}).get("resource") != "events"
    ]


def test_cancel_a_running_and_a_pending_job(
    deploy_release: DeployRelease, cluster: Cluster, figures: dict[str, Any]
) -> None:
    release = deploy_release(job={"sleepMinSeconds": 30, "sleepMaxSeconds": 40})
    gateway, namespace = release.gateway, release.namespace
    url = gateway_url(cluster, namespace)
    if url is None:
        pytest.skip("the gateway's ClusterIP is not reachable from this host")
    direct = DirectGateway(url)
    operator = _account(cluster, namespace, "operator")
    gateway_account = _account(cluster, namespace, "gateway")

    running = gateway.submit("cancel-running").body["job_id"]
    wait_status(gateway, running, "Running", timeout=120)
    pods = [p.metadata.name for p in cluster.worker_pods(namespace, running)]
    mark = audit_mark(cluster)
    answer = direct.request("DELETE", f"/jobs/{running}")
    assert answer.status in (200, 202), answer.body
    assert wait_terminal(gateway, running, timeout=60)["status"] == "Cancelled"
    wait_until(
        lambda: not cluster.worker_pods(namespace, running),
        timeout=120,
        interval=0.5,
        what="the cancelled job's pod to go",
    )
    again = direct.request("DELETE", f"/jobs/{running}")
    assert again.status == 200, again.body
    assert again.body["status"] == "Cancelled"
    assert "Cancelled" in str(again.body["message"])
    resubmitted = gateway.submit("cancel-running")
    assert resubmitted.status == 200
    assert resubmitted.body["job_id"] == running  # still the job of its window
    assert resubmitted.body["status"] == "Cancelled"

    pending = direct.submit("cancel-pending").body["job_id"]
    answer = direct.request("DELETE", f"/jobs/{pending}")  # right after the 201
    assert answer.status in (200, 202), answer.body
    assert wait_terminal(gateway, pending, timeout=60)["status"] == "Cancelled"
    wait_until(
        lambda: not cluster.worker_pods(namespace, pending),
        timeout=120,
        interval=0.5,
        what="the cancelled pending job's pod (if any) to go",
    )
    jobs = {job.metadata.name: job for job in cluster.jobs(namespace)}
    assert running in jobs  # it was Running: its Job exists, and is kept
    for name in (running, pending):  # a Job, if made, is kept stopped (its name stays taken)
        if name in jobs:
            assert jobs[name].spec.active_deadline_seconds == 1
            assert not jobs[name].status.active
            # Stopped by its deadline (the Job controller), not completed.
            conditions = {(c.type, c.reason) for c in jobs[name].status.conditions or []}
            assert ("Failed", "DeadlineExceeded") in conditions, conditions
            assert "Complete" not in {c[0] for c in conditions}, conditions
    told = cluster.core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.kind=ReportJob,involvedObject.name={running}"
    ).items
    assert {(e.reason, e.type) for e in told} >= {("Started", "Normal"), ("Cancelled", "Normal")}
    assert direct.request("DELETE", "/jobs/rj-0123456789abcdef01234567-1").status == 404

    if mark is None:
        return  # no audit log (kind): the requests cannot be counted
    # The running job: asked by the gateway, stopped once by the operator, its pod deleted by
    # the Job controller at the stopped Job's deadline; in that order. At least those three
    # requests name it (the pod's collection delete names it in its label selector).
    seen = audit_events(mark, running.encode(), expect_at_least=3)
    order = _order(seen)
    asked = _requests(seen, gateway_account, "patch", "reportjobs")
    stops = _requests(seen, operator, "patch", "jobs")
    deleted_by_controller = _requests(seen, JOB_CONTROLLER, "delete", "pods")
    swept_by_operator = _requests(seen, operator, "deletecollection", "pods")
    print(
        f"\ncancel of {running}: gateway patches {len(asked)}, operator stops {len(stops)}, "
        f"pod deletes by the Job controller {deleted_by_controller}, by the operator "
        f"(its collection delete of exited pods) {len(swept_by_operator)}\n  writes: {order}"
    )
    figures.update(
        operator_stops=len(stops),
        pod_deletes_by_job_controller=len(deleted_by_controller),
        pod_collection_deletes_by_operator=len(swept_by_operator),
    )
    assert asked == [running], order  # spec.cancel, by the gateway
    assert stops == [running], order  # the operator's stop, sent once
    assert set(deleted_by_controller) == set(pods), (pods, order)  # at the deadline
    first: dict[tuple[str, str, str, str], int] = {}  # each write's first place in the order
    for place, key in enumerate(order):
        first.setdefault(key, place)
    ask = first[(gateway_account.rsplit(":", 1)[-1], "patch", "reportjobs", running)]
    stop = first[(operator.rsplit(":", 1)[-1], "patch", "jobs", running)]
    kills = [first[("job-controller", "delete", "pods", pod)] for pod in pods]
    assert ask < stop < min(kills), order
    # The pending job: at most one Job was created for it, and a Job made is stopped once.
    made = audit_events(mark, pending.encode(), expect_at_least=1)
    creates = Counter(_requests(made, operator, "create", "jobs"))
    assert creates[pending] <= 1, creates
    if pending in jobs:
        assert _requests(made, operator, "patch", "jobs") == [pending], _order(made)


def test_cancel_of_a_finished_job_is_409(deploy_release: DeployRelease) -> None:
    release = deploy_release()
    gateway = release.gateway
    job_id = gateway.submit("cancel-too-late").body["job_id"]
    assert wait_terminal(gateway, job_id)["status"] == "Succeeded"
    answer = gateway.request("DELETE", f"/jobs/{job_id}")
    assert answer.status == 409, answer.body
    assert answer.body["job"]["status"] == "Succeeded"
