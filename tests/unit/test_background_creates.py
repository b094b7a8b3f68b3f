"""The ReportJobs of won claims, created after their 201."""

import logging

import pytest
from prometheus_client import REGISTRY

from reportjobs_gateway.creation import CREATES, BackgroundCreates
from reportjobs_gateway.ports import Read, ReportJob, StoreUnavailable
from reportjobs_model.reportjob import build_reportjob
from reportjobs_model.window import Claim
from tests.unit.fakes import FakeStore

T0 = 1_700_000_000


def _body(object_id: str) -> ReportJob:
    claim = Claim.new(object_id=object_id, now=T0, window_seconds=300, timeout_seconds=60)
    return build_reportjob(object_id=object_id, claim=claim)


class Flaky(FakeStore):
    """Unavailable for the first `failures` creates."""

    def __init__(self, failures: int) -> None:
        super().__init__(now=T0)
        self.failures = failures

    async def create(self, body: ReportJob) -> Read:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("down")
        return await super().create(body)


def _count(outcome: str) -> float:
    return CREATES.labels(outcome)._value.get()


async def test_retried_while_the_api_is_unavailable() -> None:
    store, creates = Flaky(failures=3), BackgroundCreates(backoff_seconds=0.001)
    before = _count("created")
    creates.start(_body("a"), store=store)
    assert len(creates) == 1
    await creates.drain()
    assert list(store.objects) == [_body("a")["metadata"]["name"]]
    assert _count("created") == before + 1
    assert len(creates) == 0


async def test_an_existing_job_is_no_error_and_a_lost_cause_is_left_to_the_operator() -> None:
    store = Flaky(failures=0)
    await store.create(_body("b"))
    creates = BackgroundCreates(attempts=2, backoff_seconds=0.001)
    created, left = _count("created"), _count("left")
    creates.start(_body("b"), store=store)  # 409: read it
    creates.start(_body("c"), store=Flaky(failures=5))
    await creates.drain()
    assert (_count("created"), _count("left")) == (created + 1, left + 1)


class Broken(FakeStore):
    """Every create fails with an error that is not the API being unavailable (a bug)."""

    def __init__(self) -> None:
        super().__init__(now=T0)
        self.creates = 0

    async def create(self, body: ReportJob) -> Read:
        self.creates += 1
        raise KeyError("metadata")


def _sample(outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "reportjobs_gateway_background_creates_total", {"outcome": outcome}
    )
    assert value is not None
    return value


async def test_an_unexpected_error_is_logged_with_its_cause_counted_and_not_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, creates = Broken(), BackgroundCreates(attempts=4, backoff_seconds=0.001)
    failed, left, created = _sample("failed"), _sample("left"), _sample("created")
    body = _body("d")
    with caplog.at_level(logging.ERROR, logger="reportjobs_gateway.creation"):
        creates.start(body, store=store)
        await creates.drain()
    assert store.creates == 1  # not retried: the operator's sweep creates it
    assert (_sample("failed"), _sample("left"), _sample("created")) == (failed + 1, left, created)
    [record] = [r for r in caplog.records if r.name == "reportjobs_gateway.creation"]
    assert record.levelno == logging.ERROR
    assert body["metadata"]["name"] in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], KeyError)


async def test_a_create_left_to_the_operator_names_the_last_cause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    creates = BackgroundCreates(attempts=2, backoff_seconds=0.001)
    with caplog.at_level(logging.WARNING, logger="reportjobs_gateway.creation"):
        creates.start(_body("e"), store=Flaky(failures=5))
        await creates.drain()
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], StoreUnavailable)
