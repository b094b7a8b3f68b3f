"""`reportjobs-worker --seconds N [--termination-log PATH]`.

Sleeps exactly N seconds (monotonic clock), writes `{"sleptSeconds", "startedAt",
"finishedAt"}` to the termination log and exits 0. SIGTERM ends it at once with 143.
"""

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from reportjobs_model.timestamps import format_rfc3339, utc_now

EXIT_ON_SIGTERM = 128 + signal.SIGTERM
DEFAULT_TERMINATION_LOG = Path("/dev/termination-log")


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="reportjobs-worker", description=__doc__)
    parser.add_argument("--seconds", type=_non_negative, required=True, help="how long to sleep")
    parser.add_argument(
        "--termination-log",
        type=Path,
        default=DEFAULT_TERMINATION_LOG,
        help="where the JSON report goes (default: %(default)s)",
    )
    return parser.parse_args(argv)


def sleep_exactly(seconds: float) -> None:
    """Sleep until `seconds` have passed on the monotonic clock (early wake-ups sleep again)."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        time.sleep(remaining)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(EXIT_ON_SIGTERM)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    print(f"sleeping {args.seconds} seconds", flush=True)
    started = utc_now()
    sleep_exactly(args.seconds)
    report = json.dumps(
        {
            "sleptSeconds": args.seconds,
            "startedAt": format_rfc3339(started),
            "finishedAt": format_rfc3339(utc_now()),
        }
    )
    print(report, flush=True)
    try:
        args.termination_log.write_text(report, encoding="utf-8")
    except OSError as exc:
        print(f"cannot write {args.termination_log}: {exc}", file=sys.stderr, flush=True)
    sys.exit(0)
