"""The resync safety net reconciles only what is not settled."""

from datetime import UTC, datetime, timedelta

from reportjobs_operator.reconcile import Policy, Reconciler
from reportjobs_operator.resync import resync_once
from tests.unit.fakes import WORKER, FakeOperatorApi, reportjob, stamp

W = 300
B = 5_666_666
NOW = datetime.fromtimestamp(B * W + 100, UTC)
POLICY = Policy(sleep_min_seconds=15, sleep_max_seconds=40, retention_seconds=3600, worker=WORKER)


def _add(api: FakeOperatorApi, name: str, **status: object) -> None:
    api.add_reportjob(reportjob(name=name, created=B * W - 8000, window=W, status=dict(status)))


async def test_settled_jobs_cost_no_reads_and_the_rest_are_reconciled() -> None:
    api = FakeOperatorApi()
    finished = stamp(B * W + 90)
    long_ago = (NOW - timedelta(seconds=7200)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _add(api, "rj-new-1")  # no sleep drawn yet
    _add(api, "rj-done-1", phase="Succeeded", sleepSeconds=20, finishedAt=finished)
    _add(api, "rj-expired-1", phase="Succeeded", sleepSeconds=20, finishedAt=long_ago)
    reconciler = Reconciler(api=api, policy=POLICY, draw=lambda a, b: 20, clock=lambda: NOW)

    await resync_once(reconciler=reconciler, api=api, namespace="ns")

    reads = {call.split()[1] for call in api.calls if call.startswith("get_reportjob")}
    assert reads == {"rj-new-1", "rj-expired-1"}
    assert "rj-new-1" in api.jobs  # it got its Job
    assert "rj-expired-1" not in api.reportjobs  # retention is over
    assert "rj-done-1" in api.reportjobs


async def test_a_finished_job_whose_batch_job_remains_is_not_settled() -> None:
    api = FakeOperatorApi()
    _add(api, "rj-done-1", phase="Succeeded", sleepSeconds=20, finishedAt=stamp(B * W + 90))
    reconciler = Reconciler(api=api, policy=POLICY, clock=lambda: NOW)
    (rj,) = await api.list_reportjobs(namespace="ns")
    assert reconciler.is_settled(rj, has_job=False)
    assert not reconciler.is_settled(rj, has_job=True)
