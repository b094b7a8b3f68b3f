"""`reportjobs-worker --seconds N [--timeout-seconds T] [--termination-log PATH]`.

Sleeps N seconds, measured on the monotonic clock from the moment `main` starts. With a
timeout T < N it stops at T instead: the timeout bounds the worker's own running time, not
the time the cluster took to schedule and start it. Either way it writes a JSON report to the
termination log and exits 0, so the Job controller never retries work that timed out:

- work done:  `{"timedOut": false, "sleptSeconds": N, "timeoutSeconds": T, "ranSeconds",
  "startedAt", "finishedAt"}` (`timeoutSeconds` is null without a timeout)
- timed out: `{"timedOut": true, "sleepSeconds": N, "timeoutSeconds": T, "ranSeconds",
  "startedAt", "finishedAt"}`

SIGTERM ends it at once with 143, without a report.
"""

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from reportjobs_model.timestamps import format_rfc3339, utc_now

EXIT_ON_SIGTERM = 128 + signal.SIGTERM
DEFAULT_TERMINATION_LOG = Path("/dev/termination-log")


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="reportjobs-worker",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=_non_negative, required=True, help="how long to sleep")
    parser.add_argument(
        "--timeout-seconds",
        type=_positive,
        default=None,
        help="stop the work this long after the worker started (default: no timeout)",
    )
    parser.add_argument(
        "--termination-log",
        type=Path,
        default=DEFAULT_TERMINATION_LOG,
        help="where the JSON report goes (default: %(default)s)",
    )
    return parser.parse_args(argv)


def sleep_until(deadline: float) -> None:
    """Sleep until the monotonic clock reads `deadline` (early wake-ups sleep again)."""
    while (remaining := deadline - time.monotonic()) > 0:
        time.sleep(remaining)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(EXIT_ON_SIGTERM)


def run(*, seconds: int, timeout_seconds: int | None, began: float) -> dict[str, Any]:
    """The work, bounded by the timeout counted from `began` (monotonic); returns the report."""
    started = utc_now()
    limit = seconds if timeout_seconds is None else min(seconds, timeout_seconds)
    timed_out = seconds > limit
    sleep_until(began + limit)
    outcome: dict[str, Any] = (
        {"timedOut": True, "sleepSeconds": seconds}
        if timed_out
        else {"timedOut": False, "sleptSeconds": seconds}
    )
    return {
        **outcome,
        "timeoutSeconds": timeout_seconds,
        "ranSeconds": round(time.monotonic() - began, 3),
        "startedAt": format_rfc3339(started),
        "finishedAt": format_rfc3339(utc_now()),
    }


def main(argv: list[str] | None = None) -> None:
    began = time.monotonic()
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    limit = "no timeout" if args.timeout_seconds is None else f"timeout {args.timeout_seconds} s"
    print(f"sleeping {args.seconds} seconds ({limit})", flush=True)
    outcome = run(seconds=args.seconds, timeout_seconds=args.timeout_seconds, began=began)
    if outcome["timedOut"]:
        print(f"timed out: stopped after {args.timeout_seconds} seconds", flush=True)
    report = json.dumps(outcome)
    print(report, flush=True)
    try:
        args.termination_log.write_text(report, encoding="utf-8")
    except OSError as exc:
        print(f"cannot write {args.termination_log}: {exc}", file=sys.stderr, flush=True)
    sys.exit(0)
