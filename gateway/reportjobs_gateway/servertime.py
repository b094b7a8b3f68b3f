"""Bounds of the API server's time now, from the Date of its latest answer (pure).

An answer's `Date` (whole seconds, truncated) was stamped by the server while the request was
in flight, so at the local moment the answer was received the server's time was at least
`date` and less than `date + 1 + rtt` (rtt: the request's round trip, on the local clock).
From then on both clocks advance at the same rate, so at local time `now`:

    date + (now - received)  <=  server time now  <  date + 1 + rtt + (now - received)

The only assumption is that the two clocks' *rates* agree, within `DRIFT` (0.1 %, ten times a
free-running quartz's 100 ppm, and more than NTP's slew of 500 ppm): the elapsed local time is
widened by it on both sides. No clock synchronisation is assumed: the local clock is a
monotonic one, with any offset. A sample older than `MAX_AGE_SECONDS` is not used at all, so
the drift allowance covers little time; callers then take the API path, which brings a new one.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

DRIFT = 1e-3
"""How far the rates of the local and the server clock may differ (relative)."""

MAX_AGE_SECONDS = 30.0
"""A sample older than this gives no bounds."""


@dataclass(frozen=True, slots=True)
class ServerNow:
    """The server's time now lies in [earliest, latest]."""

    earliest: float
    latest: float

    @property
    def accepted_second(self) -> int:
        """A whole server second that has certainly begun: a claim time no later than now."""
        return math.floor(self.earliest)


@dataclass(frozen=True, slots=True)
class _Sample:
    date: float
    received: float
    rtt: float


class ServerClock:
    """The latest (Date, received, round trip) of the answers of the API server."""

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._sample: _Sample | None = None

    def monotonic(self) -> float:
        return self._monotonic()

    def observe(self, *, date: float, sent: float, received: float) -> None:
        """An answer stamped `date` to a request sent at local time `sent`, received at
        `received` (both from `monotonic()`)."""
        sample = _Sample(date=date, received=received, rtt=max(0.0, received - sent))
        if self._sample is None or sample.received >= self._sample.received:
            self._sample = sample

    def now(self) -> ServerNow | None:
        """Bounds of the server's time now; None without a sample younger than MAX_AGE."""
        return self.at(self._monotonic())

    def at(self, local: float) -> ServerNow | None:
        """Bounds of the server's time at local (monotonic) time `local`, past or present;
        None unless the latest sample is younger than MAX_AGE now."""
        sample = self._sample
        if sample is None:
            return None
        age = self._monotonic() - sample.received
        if age < 0 or age > MAX_AGE_SECONDS:
            return None
        elapsed = local - sample.received
        # Before the sample, the server's clock ran at most (1 + DRIFT) times as fast.
        slow, fast = (1 - DRIFT, 1 + DRIFT) if elapsed >= 0 else (1 + DRIFT, 1 - DRIFT)
        return ServerNow(
            earliest=sample.date + elapsed * slow,
            latest=sample.date + 1 + sample.rtt * (1 + DRIFT) + elapsed * fast,
        )
