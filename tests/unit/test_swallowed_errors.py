"""Errors the operator does not raise further are logged with their cause and counted
(metrics.swallowed, reportjobs_operator_swallowed_errors_total{where}): the helper, a check of
the source that no handler of every exception does without it, and the call sites, each made
to fail."""

import ast
import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast, get_args

import pytest
from prometheus_client import REGISTRY

from reportjobs_kube.client import KubeClient
from reportjobs_model.phase import Phase
from reportjobs_operator.controller import Replica, ReplicaConfig, Shard
from reportjobs_operator.deliveries import Deliveries, ShardAccess
from reportjobs_operator.index import Index
from reportjobs_operator.leases import Fence, LeaseTerms
from reportjobs_operator.metrics import Where, swallowed
from reportjobs_operator.notifications import RetryPolicy, attempt_of, initial
from reportjobs_operator.ports import Conflict, Obj
from reportjobs_operator.reconcile import Policy, Reconciler
from reportjobs_operator.sharding import ShardLeases, ShardOwner
from reportjobs_operator.webhooks import WebhookSender
from reportjobs_operator.windows import WindowSweep
from reportjobs_operator.workqueue import WorkQueue
from tests.unit.fakes import WORKER, FakeCache, FakeLeaseApi, FakeOperatorApi, reportjob

OPERATOR = Path(__file__).resolve().parents[2] / "operator" / "reportjobs_operator"
METRIC = "reportjobs_operator_swallowed_errors_total"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
NAME = "rj-a-1"
POLICY = Policy(sleep_min_seconds=15, sleep_max_seconds=40, retention_seconds=3600, worker=WORKER)

log = logging.getLogger("tests.swallowed")


def _count(where: str) -> float:
    value = REGISTRY.get_sample_value(METRIC, {"where": where})
    assert value is not None, where
    return value


def _logged(caplog: pytest.LogCaptureFixture, logger: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger and r.levelno >= logging.ERROR]


def _cause(record: logging.LogRecord) -> BaseException | None:
    return None if record.exc_info is None else record.exc_info[1]


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not within 5 s")


# The helper


def test_every_where_is_exported_from_zero() -> None:
    assert all(REGISTRY.get_sample_value(METRIC, {"where": w}) is not None for w in get_args(Where))


def test_the_helper_logs_the_error_being_handled_and_counts_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before, other = _count("lease_write"), _count("lease_round")
    with caplog.at_level(logging.ERROR, logger=log.name):
        try:
            raise OSError("unreachable")
        except OSError:
            swallowed(log, "writing lease %s failed", "op-shard-01", where="lease_write")
    [record] = _logged(caplog, log.name)
    assert record.getMessage() == "writing lease op-shard-01 failed"
    assert isinstance(_cause(record), OSError)
    assert (_count("lease_write"), _count("lease_round")) == (before + 1, other)


def test_the_helper_takes_a_cause_given_outside_its_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before, lost = _count("delivery_record"), Conflict("stale")
    with caplog.at_level(logging.ERROR, logger=log.name):
        swallowed(log, "not recorded", where="delivery_record", cause=lost)
    [record] = _logged(caplog, log.name)
    assert _cause(record) is lost
    assert _count("delivery_record") == before + 1


def _catches_everything(handler: ast.ExceptHandler) -> bool:
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(
        name is None or (isinstance(name, ast.Name) and name.id in ("Exception", "BaseException"))
        for name in names
    )


def _calls(node: ast.AST, name: str) -> bool:
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name
        for n in ast.walk(node)
    )


def test_no_handler_of_every_exception_in_the_operator_does_without_the_helper() -> None:
    """A handler of Exception (or of everything) calls swallowed() or raises; nothing
    suppresses Exception."""
    silent = []
    for path in sorted(OPERATOR.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ExceptHandler) and _catches_everything(node):
                body = ast.Module(body=node.body, type_ignores=[])
                raises = any(isinstance(n, ast.Raise) for n in ast.walk(body))
                if not raises and not _calls(body, "swallowed"):
                    silent.append(f"{path.name}:{node.lineno}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "suppress"
                and any(
                    isinstance(a, ast.Name) and a.id in ("Exception", "BaseException")
                    for a in node.args
                )
            ):
                silent.append(f"{path.name}:{node.lineno} suppress")
    assert silent == []


# sharding.py


def _owner(api: FakeLeaseApi) -> ShardOwner:
    class Work:
        def start(self, shard: int, fence: Fence) -> None:
            pass

        async def stop(self, shard: int) -> None:
            pass

    return ShardOwner(
        api=api,
        leases=ShardLeases(namespace="ns", prefix="op", shards=2),
        terms=LeaseTerms(identity="a", duration_seconds=15),
        work=Work(),
        monotonic=lambda: 1000.0,
        clock=lambda: NOW,
    )


async def test_a_failed_round_of_leases_is_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = FakeLeaseApi()
    api.failing = True
    owner, before = _owner(api), _count("lease_round")
    with caplog.at_level(logging.ERROR, logger="reportjobs_operator.sharding"):
        await owner.step()
    [record] = _logged(caplog, "reportjobs_operator.sharding")
    assert "round" in record.getMessage()
    assert isinstance(_cause(record), OSError)
    assert _count("lease_round") == before + 1


class NoWrites(FakeLeaseApi):
    """Lists, but every replace and delete fails."""

    def __init__(self) -> None:
        super().__init__()
        self.writes_fail = False

    async def replace_lease(self, *, body: Obj) -> Obj:
        if self.writes_fail:
            raise OSError("connection reset")
        return await super().replace_lease(body=body)

    async def delete_lease(self, *, name: str, uid: str) -> None:
        if self.writes_fail:
            raise OSError("connection reset")
        await super().delete_lease(name=name, uid=uid)


async def test_failed_releases_on_stop_are_logged_and_counted_and_the_shards_still_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = NoWrites()
    owner = _owner(api)
    await owner.step()
    assert owner.held == [0, 1]
    api.writes_fail = True
    released, member = _count("lease_release"), _count("member_lease_delete")
    with caplog.at_level(logging.ERROR, logger="reportjobs_operator.sharding"):
        await owner.release_all()
    assert owner.held == []
    assert (_count("lease_release"), _count("member_lease_delete")) == (released + 2, member + 1)
    records = _logged(caplog, "reportjobs_operator.sharding")
    assert sorted(r.getMessage() for r in records) == [
        "deleting this replica's member lease op-member-a failed",
        "releasing lease op-shard-00 failed",
        "releasing lease op-shard-01 failed",
    ]
    assert all(isinstance(_cause(r), OSError) for r in records)


# reconcile.py


class NoEvents(FakeOperatorApi):
    async def create_event(self, *, body: Obj) -> None:
        raise RuntimeError("events are forbidden")


async def test_an_event_that_cannot_be_recorded_is_logged_and_counted_and_the_job_made(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = NoEvents()
    api.add_reportjob(reportjob(name=NAME, created=NOW.timestamp() - 10, window=300))
    reconciler = Reconciler(
        api=api,
        cache=FakeCache(api),
        policy=POLICY,
        released=lambda _: True,
        draw=lambda low, high: low,
        clock=lambda: NOW,
    )
    before = _count("reconcile_event")
    with caplog.at_level(logging.ERROR, logger="reportjobs_operator.reconcile"):
        await reconciler.reconcile(name=NAME)
    assert NAME in api.jobs
    records = _logged(caplog, "reportjobs_operator.reconcile")
    assert [r.getMessage() for r in records] == [
        f"could not record the Accepted Event of {NAME}",
        f"could not record the JobCreated Event of {NAME}",
    ]
    assert all(isinstance(_cause(r), RuntimeError) for r in records)
    assert _count("reconcile_event") == before + 2


# deliveries.py


class Sender:
    """A WebhookSender's send: an answer, or an error."""

    def __init__(self, status: int | None = None) -> None:
        self.status = status

    async def send(self, *, url: str, webhook_id: str, body: bytes, now: datetime) -> Any:
        if self.status is None:
            raise RuntimeError("a bug in the sender")
        return attempt_of(status_code=self.status)


async def _deliver(api: FakeOperatorApi, sender: Sender) -> None:
    rj = reportjob(name=NAME, created=NOW.timestamp() - 60, window=300)
    rj["spec"]["callbackUrl"] = "https://example.com/hook"
    rj["status"] = {"phase": "Succeeded", "finishedAt": "2026-12-01T11:59:50Z"}
    rj["status"]["notification"] = initial(reportjob=rj, phase=Phase.SUCCEEDED, now=NOW)
    api.add_reportjob(rj)
    deliveries = Deliveries(
        sender=cast(WebhookSender, sender), policy=RetryPolicy(), concurrency=1, clock=lambda: NOW
    )
    access = ShardAccess(cache=FakeCache(api), api=api, holds=lambda: True, wake=lambda _: None)
    deliveries.consider(NAME, access=access)
    assert len(deliveries) == 1
    await _until(lambda: not len(deliveries))


@pytest.mark.parametrize(
    ("where", "sender", "api", "message", "cause"),
    [
        (
            "delivery",
            Sender(None),
            FakeOperatorApi,
            f"delivery of {NAME} failed; it is tried again",
            RuntimeError,
        ),
        (
            "delivery_event",
            Sender(204),
            NoEvents,
            f"could not record the NotificationDelivered Event of {NAME}",
            RuntimeError,
        ),
    ],
)
async def test_a_failed_delivery_or_its_event_is_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
    where: str,
    sender: Sender,
    api: Callable[[], FakeOperatorApi],
    message: str,
    cause: type[BaseException],
) -> None:
    before = _count(where)
    with caplog.at_level(logging.ERROR, logger="reportjobs_operator.deliveries"):
        await _deliver(api(), sender)
    [record] = _logged(caplog, "reportjobs_operator.deliveries")
    assert record.getMessage() == message
    assert isinstance(_cause(record), cause)
    assert _count(where) == before + 1


async def test_an_outcome_lost_to_conflicts_is_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = FakeOperatorApi()
    api.status_conflicts = 1000
    before = _count("delivery_record")
    with caplog.at_level(logging.ERROR, logger="reportjobs_operator.deliveries"):
        await _deliver(api, Sender(204))
    [record] = _logged(caplog, "reportjobs_operator.deliveries")
    assert record.getMessage().startswith(f"the outcome of a delivery of {NAME} was not recorded")
    assert isinstance(_cause(record), Conflict)
    assert _count("delivery_record") == before + 1


# controller.py


@pytest.fixture
def replica() -> Iterator[Replica]:
    """A replica without a client; its shards are let go of after the test (the index gauges
    are set to count them)."""
    config = ReplicaConfig(namespace="ns", shards=1, policy=POLICY, workers=1, resync_seconds=0.01)
    made = Replica(client=cast(KubeClient, None), config=config)
    yield made
    made._shards.clear()


class Failing:
    """Stands in for whatever a test needs to fail: any attribute raises."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"{name}: a bug")


class BrokenInformer:
    """Synced and empty; its run fails soon after."""

    def __init__(self) -> None:
        self.synced = asyncio.Event()
        self.synced.set()

    def __len__(self) -> int:
        return 0

    async def run(self) -> None:
        await asyncio.sleep(0.05)
        raise RuntimeError("an informer's bug")


class StubIndex:
    def __init__(self) -> None:
        self.informers = [BrokenInformer() for _ in range(3)]
        self.reportjobs: dict[str, Obj] = {}
        self.jobs: dict[str, Obj] = {}
        self.pods: dict[str, Obj] = {}


def _shard(task: "asyncio.Task[None] | None" = None) -> Shard:
    return Shard(
        number=0,
        fence=cast(Fence, Failing()),
        index=cast(Index, StubIndex()),
        queue=WorkQueue(),
        reconciler=cast(Reconciler, Failing()),
        task=task,
    )


async def _logged_while(
    caplog: pytest.LogCaptureFixture, where: str, run: Callable[[], Awaitable[None]]
) -> logging.LogRecord:
    before = _count(where)
    with caplog.at_level(logging.ERROR, logger="reportjobs_operator.controller"):
        await run()
    assert _count(where) > before
    records = _logged(caplog, "reportjobs_operator.controller")
    assert records
    assert all(isinstance(_cause(r), RuntimeError) for r in records)
    return records[0]


async def test_a_failed_window_sweep_is_logged_and_counted(
    caplog: pytest.LogCaptureFixture, replica: Replica
) -> None:
    stop = asyncio.Event()
    replica._sweep = cast(WindowSweep, Failing())
    replica._shards[0] = _shard()
    before = _count("window_sweep")

    async def run() -> None:
        task = asyncio.create_task(replica.sweep(stop))
        await _until(lambda: _count("window_sweep") > before)
        stop.set()
        await task

    record = await _logged_while(caplog, "window_sweep", run)
    assert record.getMessage() == "sweeping the dedup window shards failed"


async def test_a_failed_shard_work_is_logged_counted_and_started_over(
    caplog: pytest.LogCaptureFixture, replica: Replica
) -> None:
    shard = _shard()
    before = _count("shard_work")

    async def run() -> None:
        task = asyncio.create_task(replica._run(shard))
        await _until(lambda: _count("shard_work") > before)
        shard.stopping.set()
        await task

    record = await _logged_while(caplog, "shard_work", run)
    assert record.getMessage() == "the work of shard 0 failed; starting it over"


async def test_a_failed_reconcile_is_logged_and_counted(
    caplog: pytest.LogCaptureFixture, replica: Replica
) -> None:
    shard = _shard()
    shard.queue.add(NAME)
    before = _count("reconcile")

    async def run() -> None:
        task = asyncio.create_task(replica._work(shard))
        await _until(lambda: _count("reconcile") > before)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    record = await _logged_while(caplog, "reconcile", run)
    assert record.getMessage() == f"reconcile of {NAME} failed; retrying after a backoff"


async def test_a_shard_whose_work_failed_as_it_stopped_is_logged_and_counted(
    caplog: pytest.LogCaptureFixture, replica: Replica
) -> None:
    async def broken() -> None:
        raise RuntimeError("a bug")

    replica._shards[0] = _shard(asyncio.create_task(broken()))
    record = await _logged_while(caplog, "shard_stop", lambda: replica.stop(0))
    assert record.getMessage() == "the work of shard 0 failed as it stopped"
    assert replica.held() == []
