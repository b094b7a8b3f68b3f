"""The fake API server agrees with the real one: the contract table of tests/contract/, which
tests/e2e/test_api_contract.py runs against the test bed's API server, runs here against
FakeStore; and the fake's old `test` (decoded values compared) is caught by it."""

from __future__ import annotations

from typing import Any

from reportjobs_operator.ports import Conflict
from tests.contract.api_semantics import (
    FINALIZER_EXPECTED,
    REPORTJOB_EXPECTED,
    date_problems,
    dates,
    expected,
    finalizer_rows,
    reportjob_rows,
    run_rows,
)
from tests.unit.fakes import FakeOperatorApi, FakeStore, apply_json_patch, decoded_equal


async def test_the_fake_agrees_with_the_api_server_table() -> None:
    observed = await run_rows(FakeStore(now=1_700_000_000.25), prefix="contract-")
    assert observed == expected()


async def test_the_fake_date_header_is_whole_seconds_and_never_goes_back() -> None:
    store = FakeStore(now=1_700_000_000.25)
    await run_rows(store, prefix="contract-")
    seen = []
    for step in (0.5, 0.4, 1.7):
        store.now += step
        seen += await dates(store, name="contract-0", count=2)
    assert date_problems(seen) == []
    assert date_problems([1.5, 1.0]) == ["1.5 is not a whole second", "1.0 after 1.5"]


class DecodedTests(FakeStore):
    """The fake as it was: a `test` compares decoded values."""

    def _patched(self, current: dict[str, Any], patch: list[dict[str, Any]]) -> dict[str, Any]:
        return apply_json_patch(current, patch, equal=decoded_equal)


class StrictReplaces(FakeStore):
    """A fake that refuses a replace without a resourceVersion (the API server applies it)."""

    def _stale(self, body: dict[str, Any], current: dict[str, Any]) -> bool:
        return body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]


async def test_the_table_catches_a_fake_that_differs() -> None:
    for kinder in (DecodedTests, StrictReplaces):
        observed = await run_rows(kinder(now=1_700_000_000), prefix="contract-")
        assert observed != expected(), kinder


async def test_the_fake_agrees_on_reportjob_requests() -> None:
    observed = await reportjob_rows(FakeStore(now=1_700_000_000))
    assert observed == REPORTJOB_EXPECTED


async def test_the_operator_fake_agrees_on_finalizers() -> None:
    observed = await finalizer_rows(FakeOperatorApi(), conflict=Conflict)
    assert observed == FINALIZER_EXPECTED
