#!/usr/bin/env python3
"""Print the passed/skipped/failed/error counts of each JUnit XML file pytest wrote (one per
test phase: unit, e2e-parallel, e2e-serial, reliability), and the tests that did not pass.

usage: test_counts.py DIR   (.ci/run calls it after each `make` phase)
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def counts(*, path: Path) -> tuple[dict[str, int], float, list[str]]:
    """(outcome -> count, the run's seconds, the tests that did not pass)."""
    tally = {"passed": 0, "skipped": 0, "failed": 0, "error": 0}
    not_passed = []
    root = ET.parse(path).getroot()  # noqa: S314 - our own pytest wrote it
    seconds = sum(float(suite.get("time", 0)) for suite in root.iter("testsuite"))
    for case in root.iter("testcase"):
        outcome = next(
            (tag for tag in ("failure", "error", "skipped") if case.find(tag) is not None),
            "passed",
        )
        outcome = {"failure": "failed"}.get(outcome, outcome)
        tally[outcome] += 1
        if outcome != "passed":
            not_passed.append(f"{outcome}: {case.get('classname')}::{case.get('name')}")
    return tally, seconds, not_passed


def main() -> int:
    directory = Path(sys.argv[1])
    for path in sorted(directory.glob("*.xml"), key=lambda p: p.stat().st_mtime):
        tally, seconds, not_passed = counts(path=path)
        summary = "  ".join(f"{k} {v}" for k, v in tally.items())
        print(f"  {path.stem:<14} {summary}  in {seconds:.0f}s")
        for line in not_passed:
            print(f"    {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
