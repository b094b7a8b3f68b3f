"""Active/standby with a coordination.k8s.io/v1 Lease (the client-go leader-election rules).

Expiry is judged on the local monotonic clock: a lease is free when its record has not
changed for leaseDurationSeconds since we first saw it, so clocks of pods never compare.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reportjobs_model.timestamps import parse_rfc3339, utc_now
from reportjobs_operator.ports import Conflict, LeaseApi, Obj

log = logging.getLogger(__name__)

EXIT_FAILURE = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseTerms:
    namespace: str
    name: str
    identity: str
    duration_seconds: int

    @property
    def renew_deadline(self) -> float:
        """Give up leading when no renewal succeeded for this long (before others may take)."""
        return self.duration_seconds * 2 / 3

    @property
    def retry_period(self) -> float:
        return max(1.0, self.duration_seconds / 7.5)


def micro_time(moment: datetime) -> str:
    """A MicroTime as the API server parses it (RFC 3339 with six fraction digits)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def may_take(spec: Mapping[str, Any], *, identity: str, unchanged_for: float) -> bool:
    """Free, ours, or not renewed within its duration (as observed locally)."""
    holder = spec.get("holderIdentity")
    duration = float(spec.get("leaseDurationSeconds") or 0)
    return not holder or holder == identity or unchanged_for >= duration


def next_spec(previous: Mapping[str, Any] | None, *, terms: LeaseTerms, now: datetime) -> Obj:
    """The spec that makes `terms.identity` the holder, renewed `now`."""
    previous = previous or {}
    ours = previous.get("holderIdentity") == terms.identity
    transitions = int(previous.get("leaseTransitions") or 0)
    acquired = previous.get("acquireTime") if ours else None
    return {
        "holderIdentity": terms.identity,
        "leaseDurationSeconds": terms.duration_seconds,
        "acquireTime": micro_time(parse_rfc3339(acquired) if acquired else now),
        "renewTime": micro_time(now),
        "leaseTransitions": transitions if ours or not previous else transitions + 1,
    }


async def wait_for_flag(flag: asyncio.Event, seconds: float) -> bool:
    """Wait up to `seconds` for the flag; whether it is set."""
    try:
        await asyncio.wait_for(flag.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


class Elector:
    def __init__(
        self,
        *,
        api: LeaseApi,
        terms: LeaseTerms,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._api = api
        self._terms = terms
        self._monotonic = monotonic
        self._clock = clock
        self._seen: tuple[Any, ...] | None = None
        self._seen_at = 0.0

    def _unchanged_for(self, lease: Mapping[str, Any]) -> float:
        """How long (locally) this lease record has been seen unchanged."""
        spec = lease.get("spec") or {}
        version = (lease.get("metadata") or {}).get("resourceVersion")
        record = (version, spec.get("holderIdentity"), spec.get("renewTime"))
        if record != self._seen:
            self._seen, self._seen_at = record, self._monotonic()
        return self._monotonic() - self._seen_at

    async def try_acquire_or_renew(self) -> bool:
        terms = self._terms
        lease = await self._api.get_lease(name=terms.name)
        try:
            if lease is None:
                body = {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": terms.name, "namespace": terms.namespace},
                    "spec": next_spec(None, terms=terms, now=self._clock()),
                }
                await self._api.create_lease(body=body)
                return True
            spec = lease.get("spec") or {}
            unchanged_for = self._unchanged_for(lease)
            if not may_take(spec, identity=terms.identity, unchanged_for=unchanged_for):
                return False
            body = {**lease, "spec": next_spec(spec, terms=terms, now=self._clock())}
            written = await self._api.replace_lease(body=body)
        except Conflict:
            return False
        self._unchanged_for(written)
        return True

    async def release(self) -> None:
        """Hand the lease over at once (graceful stop): no holder, duration 1 s."""
        terms = self._terms
        lease = await self._api.get_lease(name=terms.name)
        spec = (lease or {}).get("spec") or {}
        if lease is None or spec.get("holderIdentity") != terms.identity:
            return
        released = next_spec(spec, terms=terms, now=self._clock())
        del released["holderIdentity"]
        released["leaseDurationSeconds"] = 1
        with contextlib.suppress(Conflict):
            await self._api.replace_lease(body={**lease, "spec": released})


async def _attempt(elector: Elector) -> bool:
    try:
        return await elector.try_acquire_or_renew()
    except Exception:
        log.exception("lease request failed")
        return False


RunActive = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


async def lead(
    *,
    elector: Elector,
    terms: LeaseTerms,
    run_active: RunActive,
    stop: asyncio.Event,
    on_leading: Callable[[bool], None] = lambda leading: None,
) -> int:
    """Stand by until the lease is ours, then run until stopped; the process's exit code."""
    while not await _attempt(elector):
        if await wait_for_flag(stop, terms.retry_period):
            return 0
    log.info("acquired lease %s/%s as %s", terms.namespace, terms.name, terms.identity)
    on_leading(True)
    active_stop = asyncio.Event()
    active = asyncio.create_task(run_active(active_stop))
    code = await _hold(elector, terms, active, stop)
    on_leading(False)
    active_stop.set()
    grace = max(1.0, terms.duration_seconds - terms.renew_deadline - 1)
    done, _ = await asyncio.wait({active}, timeout=grace)
    if not done:
        log.warning("the operator did not stop within %.0f s; exiting anyway", grace)
        active.cancel()
    elif code == 0 and not _ended_cleanly(active):
        code = EXIT_FAILURE
    if code == 0:
        with contextlib.suppress(Exception):
            await elector.release()
    return code


def _ended_cleanly(task: "asyncio.Task[None]") -> bool:
    """The controller returns by itself only when told to stop; anything else is a failure."""
    if task.cancelled():
        return False
    if (error := task.exception()) is not None:
        log.error("the operator failed", exc_info=error)
        return False
    return True


async def _hold(
    elector: Elector, terms: LeaseTerms, active: "asyncio.Task[None]", stop: asyncio.Event
) -> int:
    """Renew while active; 0 on a requested stop, non-zero when the lease is lost."""
    renewed = time.monotonic()
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while True:
            await asyncio.wait(
                {active, stopping}, timeout=terms.retry_period, return_when=asyncio.FIRST_COMPLETED
            )
            if active.done():
                return 0 if _ended_cleanly(active) else EXIT_FAILURE
            if stop.is_set():
                return 0
            if await _attempt(elector):
                renewed = time.monotonic()
            elif time.monotonic() - renewed > terms.renew_deadline:
                log.error(
                    "could not renew lease %s within %.0f s", terms.name, terms.renew_deadline
                )
                return EXIT_FAILURE
    finally:
        stopping.cancel()
