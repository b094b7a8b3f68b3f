"""The timeout bounds the work, not the cluster's delays.

The worker enforces a job's timeout from its own start: on a test bed loaded with concurrent
jobs, work that fits its timeout succeeds however long the pod took to start, and work that
exceeds it ends TimedOut (stopped by the worker) with its pod gone. The Job's
activeDeadlineSeconds (timeout + start-up allowance) and the optional start deadline catch
jobs whose work never starts; each message names the limit that fired.

Each test chooses its values so that one mechanism alone can end its jobs: which one ends them
never depends on how fast the machine is.
"""

from __future__ import annotations

from datetime import datetime

from kubernetes.client.rest import ApiException

from tests.e2e.conftest import DeployRelease
from tests.e2e.support.jobs import wait_terminal
from tests.e2e.support.kube import Cluster
from tests.e2e.support.polling import wait_until

SLEEP = 6  # every job of the loaded release sleeps this long (sleepMinSeconds = sleepMaxSeconds)
FILLERS = 18  # jobs submitted at once to load the test bed
NO_BACKSTOP = 3600  # a start-up allowance no start-up on the test bed comes near


def parse_time(text: object) -> datetime:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def seconds_between(earlier: object, later: object) -> float:
    return (parse_time(later) - parse_time(earlier)).total_seconds()


def wait_no_worker_pods(cluster: Cluster, namespace: str, job_id: str) -> None:
    wait_until(
        lambda: not cluster.worker_pods(namespace, job_id),
        timeout=90,
        what=f"no worker pod of {job_id} left",
    )


def job_start_time(cluster: Cluster, namespace: str, name: str) -> datetime | None:
    """status.startTime of the batch Job: where activeDeadlineSeconds counts from."""
    try:
        job = cluster.batch.read_namespaced_job(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    start: datetime | None = job.status.start_time if job.status else None
    return start


def test_under_load_the_timeout_bounds_the_work_not_the_start_up(
    deploy_release: DeployRelease, cluster: Cluster, figures: dict[str, object]
) -> None:
    # Only the worker can end these jobs: it stops work longer than its timeout, counted on its
    # own clock from its own start. The Job controller's activeDeadlineSeconds (timeout + the
    # start-up allowance, counted from the Job's startTime) is an hour away, so a slow start
    # on a loaded machine cannot let it fire first; no start deadline is set.
    release = deploy_release(
        job={
            "sleepMinSeconds": SLEEP,
            "sleepMaxSeconds": SLEEP,
            "timeoutSeconds": SLEEP - 1,  # the configured timeout: too short for the work
            "maxTimeoutSeconds": 60,
            "startupAllowanceSeconds": NO_BACKSTOP,
        }
    )
    gateway, namespace = release.gateway, release.namespace
    fillers = []
    for index in range(FILLERS):
        answer = gateway.submit(f"filler-{index}", timeout_seconds=60)
        assert answer.status == 201, answer
        fillers.append(answer.body["job_id"])
    # Margin 0: the work takes exactly its timeout. Any start-up delay at all makes the old
    # Job-level deadline (timeout counted from the Job's start) fire first.
    exact = gateway.submit("fits-exactly", timeout_seconds=SLEEP)
    margin = gateway.submit("fits-with-1s-margin", timeout_seconds=SLEEP + 1)
    exceeds = gateway.submit("exceeds-the-configured-timeout")
    assert [a.status for a in (exact, margin, exceeds)] == [201] * 3, (exact, margin, exceeds)
    assert exceeds.body["timeout_seconds"] == SLEEP - 1
    exact_id = exact.body["job_id"]

    # Where the old activeDeadlineSeconds = timeout counted from (the Job is deleted once the
    # outcome is recorded, so it is read while it exists).
    exact_job_start = wait_until(
        lambda: job_start_time(cluster, namespace, exact_id),
        timeout=180,
        interval=0.5,
        what=f"the Job of {exact_id} to have a startTime",
    )

    for answer, slack in ((exact, 0), (margin, 1)):
        fit = wait_terminal(gateway, answer.body["job_id"], timeout=300)
        assert fit["status"] == "Succeeded", fit
        assert fit["message"] == f"Succeeded: the worker slept {SLEEP} seconds", fit
        assert fit["timeout_seconds"] == SLEEP + slack
        print(
            f"margin {slack} s: start-up delay created_at -> started_at "
            f"{seconds_between(fit['created_at'], fit['started_at']):.0f} s"
        )
        if slack == 0:
            # The Job controller stamps startTime before it creates the pod, so the worker
            # always starts after it: with no margin, the old deadline (the timeout counted from
            # startTime) always fires before the work is done. The next test shows it happening.
            # Timestamps have whole seconds, so these figures are printed, not compared with 0.
            from_job_start = (parse_time(fit["started_at"]) - exact_job_start).total_seconds()
            print(f"margin 0 s: Job startTime -> started_at {from_job_start:.0f} s")
            assert from_job_start >= 0, (exact_job_start, fit)
            assert parse_time(fit["created_at"]) <= exact_job_start, (exact_job_start, fit)

    late = wait_terminal(gateway, exceeds.body["job_id"], timeout=300)
    assert late["status"] == "TimedOut", late
    assert late["sleep_seconds"] == SLEEP
    assert late["attempts"] == 1, late  # the worker exited 0: the Job controller did not retry
    assert late["message"].startswith(
        f"TimedOut: the work exceeded its timeout of {SLEEP - 1} seconds (stopped by the worker"
    ), late
    wait_no_worker_pods(cluster, namespace, exceeds.body["job_id"])

    outcomes = [wait_terminal(gateway, job_id, timeout=300) for job_id in fillers]
    assert [o["status"] for o in outcomes] == ["Succeeded"] * FILLERS, outcomes
    delays = sorted(seconds_between(o["created_at"], o["started_at"]) for o in outcomes)
    print(f"filler start-up delays (created_at -> started_at, s): {delays}")
    figures.update(jobs=FILLERS + 3, start_up_delay_max_seconds=max(delays))


def test_without_a_startup_allowance_the_job_deadline_fires_first(
    deploy_release: DeployRelease, cluster: Cluster
) -> None:
    """The old semantics (activeDeadlineSeconds = timeout, counted from the Job's start): work
    that takes exactly its timeout is cut off by the Job controller, because the worker starts
    after the Job does. This is what the test above would see without the worker's own timeout.

    Not a race, whatever the load: the worker sleeps exactly its timeout, so it never stops
    itself, and no start deadline is set; the Job ends by the Job controller alone. Its syncJob
    (pkg/controller/job/job_controller.go, 1.20) stamps status.startTime, then creates the
    pod; the worker's 3 s begin once its container has started, so the pod succeeds only after
    startTime + 3 s, the deadline. Every sync checks pastActiveDeadline before it counts
    succeeded pods, so whichever sync comes first after that (the one queued at the deadline,
    or the one for the pod's success) fails the Job DeadlineExceeded: it cannot end Complete.
    """
    release = deploy_release(
        job={
            "sleepMinSeconds": 3,
            "sleepMaxSeconds": 3,
            "timeoutSeconds": 3,
            "maxTimeoutSeconds": 3,
            "startupAllowanceSeconds": 0,
        }
    )
    answer = release.gateway.submit("fits-exactly-but-no-allowance")
    assert answer.status == 201, answer
    job_id = answer.body["job_id"]
    job = wait_terminal(release.gateway, job_id, timeout=120)
    assert job["status"] == "TimedOut", job
    assert job["message"].startswith(
        "TimedOut: the Job exceeded its deadline of 3 seconds (timeout 3 s + start-up allowance"
        " 0 s), counted from the Job's start; stopped by the Job controller"
    ), job
    # The batch Job is kept with its ReportJob: failed at its deadline, never complete.
    batch_job = cluster.batch.read_namespaced_job(job_id, release.namespace)
    conditions = {(c.type, c.reason) for c in batch_job.status.conditions or []}
    assert ("Failed", "DeadlineExceeded") in conditions, conditions
    assert "Complete" not in {kind for kind, _ in conditions}, conditions
    wait_no_worker_pods(cluster, release.namespace, job_id)


ALLOWANCE = 2  # the start-up allowance of the releases whose work never starts
# Worker pods that cannot be scheduled (a memory request no node has) never start.
UNSCHEDULABLE = {
    "resources": {"requests": {"cpu": "10m", "memory": "64Ti"}, "limits": {"memory": "64Ti"}}
}


def test_work_that_never_starts_is_stopped_by_the_backstop(
    deploy_release: DeployRelease, cluster: Cluster
) -> None:
    """With no start deadline, only the Job's activeDeadlineSeconds (timeout + allowance) can
    stop it. Each limit has its own release: when both are set, which fires first is a race
    between the Job controller and the operator, which a loaded machine can lose either way.
    """
    release = deploy_release(
        job={"timeoutSeconds": 60, "maxTimeoutSeconds": 60, "startupAllowanceSeconds": ALLOWANCE},
        worker=UNSCHEDULABLE,
    )
    quick = release.gateway.submit("backstop", timeout_seconds=1)
    assert quick.status == 201, quick
    backstop = wait_terminal(release.gateway, quick.body["job_id"], timeout=180)
    assert backstop["status"] == "TimedOut", backstop
    assert backstop["message"].startswith(
        f"TimedOut: the Job exceeded its deadline of {1 + ALLOWANCE} seconds (timeout 1 s + "
        f"start-up allowance {ALLOWANCE} s), counted from the Job's start; stopped by the Job "
        "controller"
    ), backstop
    assert backstop["started_at"] is None
    wait_no_worker_pods(cluster, release.namespace, quick.body["job_id"])


def test_work_that_never_starts_is_stopped_by_the_start_deadline(
    deploy_release: DeployRelease, cluster: Cluster
) -> None:
    """The backstop is 3600 + 2 s away, so only the operator's start deadline can stop it."""
    start_deadline = 15
    release = deploy_release(
        job={
            "timeoutSeconds": 60,
            "maxTimeoutSeconds": 3600,
            "startupAllowanceSeconds": ALLOWANCE,
            "startDeadlineSeconds": start_deadline,
        },
        worker=UNSCHEDULABLE,
    )
    patient = release.gateway.submit("start-deadline", timeout_seconds=3600)
    assert patient.status == 201, patient
    never = wait_terminal(release.gateway, patient.body["job_id"], timeout=180)
    assert never["status"] == "TimedOut", never
    assert never["message"].startswith(
        f"TimedOut: the work did not start within its start deadline of {start_deadline} "
        "seconds after the job was created; stopped by the operator"
    ), never
    assert never["started_at"] is None
    waited = (parse_time(never["finished_at"]) - parse_time(never["created_at"])).total_seconds()
    print(f"start deadline {start_deadline} s: TimedOut {waited:.0f} s after creation")
    assert waited >= start_deadline
    wait_no_worker_pods(cluster, release.namespace, patient.body["job_id"])
