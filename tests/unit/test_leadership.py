"""Lease-based active/standby."""

import asyncio
from datetime import UTC, datetime

import pytest

from reportjobs_operator.leadership import (
    EXIT_FAILURE,
    Elector,
    LeaseTerms,
    lead,
    may_take,
    micro_time,
    next_spec,
)
from tests.unit.fakes import FakeLeaseApi

NOW = datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)


def _terms(identity: str, duration: int = 15) -> LeaseTerms:
    return LeaseTerms(namespace="ns", name="lease", identity=identity, duration_seconds=duration)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _elector(api: FakeLeaseApi, identity: str, clock: Clock) -> Elector:
    return Elector(api=api, terms=_terms(identity), monotonic=clock, clock=lambda: NOW)


def test_micro_time_has_six_fraction_digits() -> None:
    assert micro_time(NOW) == "2024-05-01T12:00:00.250000Z"
    assert micro_time(NOW.replace(microsecond=0)) == "2024-05-01T12:00:00.000000Z"


@pytest.mark.parametrize(
    ("holder", "unchanged_for", "expected"),
    [(None, 0, True), ("", 0, True), ("me", 0, True), ("other", 14.9, False), ("other", 15, True)],
)
def test_may_take(holder: str | None, unchanged_for: float, expected: bool) -> None:
    spec = {"holderIdentity": holder, "leaseDurationSeconds": 15}
    assert may_take(spec, identity="me", unchanged_for=unchanged_for) is expected


def test_next_spec_counts_transitions_and_keeps_our_acquire_time() -> None:
    terms = _terms("me")
    first = next_spec(None, terms=terms, now=NOW)
    assert first["leaseTransitions"] == 0
    assert first["holderIdentity"] == "me"
    renewed = next_spec(
        {**first, "acquireTime": "2024-05-01T11:00:00.000000Z"}, terms=terms, now=NOW
    )
    assert renewed["acquireTime"] == "2024-05-01T11:00:00.000000Z"
    assert renewed["leaseTransitions"] == 0
    taken = next_spec({"holderIdentity": "other", "leaseTransitions": 4}, terms=terms, now=NOW)
    assert taken["leaseTransitions"] == 5
    assert taken["acquireTime"] == taken["renewTime"] == micro_time(NOW)


async def test_standby_takes_over_only_after_the_lease_expires() -> None:
    api, clock = FakeLeaseApi(), Clock()
    leader, standby = _elector(api, "pod-a", clock), _elector(api, "pod-b", clock)
    assert await leader.try_acquire_or_renew() is True
    assert await standby.try_acquire_or_renew() is False
    clock.now += 10
    assert await leader.try_acquire_or_renew() is True  # renewed: the record changed
    clock.now += 10
    assert await standby.try_acquire_or_renew() is False  # seen changing 10 s ago
    clock.now += 15
    assert await standby.try_acquire_or_renew() is True
    assert api.leases["lease"]["spec"]["holderIdentity"] == "pod-b"
    assert api.leases["lease"]["spec"]["leaseTransitions"] == 1
    assert await leader.try_acquire_or_renew() is False


async def test_release_frees_the_lease_at_once() -> None:
    api, clock = FakeLeaseApi(), Clock()
    leader, standby = _elector(api, "pod-a", clock), _elector(api, "pod-b", clock)
    assert await leader.try_acquire_or_renew()
    assert not await standby.try_acquire_or_renew()
    await leader.release()
    assert "holderIdentity" not in api.leases["lease"]["spec"]
    assert await standby.try_acquire_or_renew()


async def test_lead_runs_the_active_part_and_releases_on_stop() -> None:
    api = FakeLeaseApi()
    terms = _terms("pod-a", duration=3)
    stop, started, states = asyncio.Event(), asyncio.Event(), []

    async def active(flag: asyncio.Event) -> None:
        started.set()
        await flag.wait()

    async def stop_soon() -> None:
        await started.wait()
        stop.set()

    code, _ = await asyncio.gather(
        lead(
            elector=Elector(api=api, terms=terms),
            terms=terms,
            run_active=active,
            stop=stop,
            on_leading=states.append,
        ),
        stop_soon(),
    )
    assert code == 0
    assert states == [True, False]
    assert "holderIdentity" not in api.leases["lease"]["spec"]


async def test_lead_exits_non_zero_when_renewal_keeps_failing() -> None:
    api = FakeLeaseApi()
    terms = _terms("pod-a", duration=3)
    stopped = asyncio.Event()

    async def active(flag: asyncio.Event) -> None:
        api.failing = True
        await flag.wait()
        stopped.set()

    code = await asyncio.wait_for(
        lead(
            elector=Elector(api=api, terms=terms),
            terms=terms,
            run_active=active,
            stop=asyncio.Event(),
        ),
        timeout=10,
    )
    assert code == EXIT_FAILURE
    assert stopped.is_set()


async def test_lead_exits_non_zero_when_the_operator_fails() -> None:
    terms = _terms("pod-a", duration=3)

    async def active(flag: asyncio.Event) -> None:
        raise RuntimeError("the controller crashed")

    code = await lead(
        elector=Elector(api=FakeLeaseApi(), terms=terms),
        terms=terms,
        run_active=active,
        stop=asyncio.Event(),
    )
    assert code == EXIT_FAILURE


async def test_a_stop_in_standby_ends_cleanly() -> None:
    api, clock = FakeLeaseApi(), Clock()
    assert await _elector(api, "pod-a", clock).try_acquire_or_renew()
    stop = asyncio.Event()
    stop.set()
    terms = _terms("pod-b")

    async def active(flag: asyncio.Event) -> None:
        raise AssertionError("a standby must not run the operator")

    code = await lead(
        elector=Elector(api=api, terms=terms), terms=terms, run_active=active, stop=stop
    )
    assert code == 0
