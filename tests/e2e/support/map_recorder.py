"""The test map's recorder: a pytest plugin that writes what every e2e test of a run showed
(outcome, time, what it proves, its figures) as one JSON file, which `scripts/test_map.py`
renders into docs/reliability.md.

Registered by tests/e2e/conftest.py importing this module's `pytest_configure`: a
`pytest_plugins` list there would break `pytest tests` (it is not a top-level conftest).

Two halves, so it works alike with and without pytest-xdist:
- where tests are collected (the single process, or each xdist worker), every e2e item gets a
  ("test_map", {...}) user property with its docstring and markers, so it travels in each of
  its reports, as the `figures` fixture's ("figures", {...}) does;
- where reports arrive (the single process, or the xdist controller, never a worker), the
  reports are folded into one record per test, written when the session ends.

Where it writes: $REPORTJOBS_TEST_MAP_DIR (default <rootdir>/.cluster/test-map), file
`<phase>.json`, or `<phase>.<part>.json` for one part of a phase run as several sessions.
The phase is $REPORTJOBS_TEST_PHASE, else `reliability` when the `-m` expression selects
reliability tests only, else `test`; the part is $REPORTJOBS_TEST_MAP_PART, else `serial` or
`parallel` when `-m` selects only serial or only non-serial tests, else none. A file replaces
the phase's earlier run: `<phase>.json` removes the phase's part files, a part file removes
`<phase>.json`. A `--collect-only` run, or one that reported no e2e test, writes nothing.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

PROPERTY = "test_map"
FIGURES = "figures"
FORMAT = 1
# The marker combinations a -m expression is tried on to tell the phase and part it selects.
_MARKER_SETS = [
    frozenset({"e2e", *extra})
    for extra in ((), ("serial",), ("reliability",), ("reliability", "serial"))
]


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("reportjobs-test-map-items"):
        config.pluginmanager.register(ItemRecorder(), "reportjobs-test-map-items")
    worker = hasattr(config, "workerinput")
    if not worker and not config.pluginmanager.has_plugin("reportjobs-test-map"):
        config.pluginmanager.register(RunRecorder(config), "reportjobs-test-map")


def first_paragraph(doc: str | None) -> str | None:
    if not doc or not doc.strip():
        return None
    paragraph = doc.strip().split("\n\n")[0]
    return " ".join(paragraph.split())


class ItemRecorder:
    """Where tests are collected: what the controller cannot see of an item."""

    @pytest.hookimpl(trylast=True)  # after tests/e2e/conftest.py has marked its items e2e
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            markers = sorted({marker.name for marker in item.iter_markers()})
            if "e2e" not in markers or any(name == PROPERTY for name, _ in item.user_properties):
                continue
            doc = first_paragraph(getattr(getattr(item, "function", None), "__doc__", None))
            source = "function" if doc else None
            if doc is None:
                module = getattr(item, "module", None)
                doc = first_paragraph(getattr(module, "__doc__", None))
                source = "module" if doc else None
            item.user_properties.append(
                (PROPERTY, {"doc": doc, "doc_from": source, "markers": markers})
            )


class RunRecorder:
    """Where reports arrive: one record per e2e test, written at the end of the session."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.started = _utc_now()
        self.commit, self.dirty = _git_state(config.rootpath)
        self.tests: dict[str, dict[str, Any]] = {}
        self.collection_errors: set[str] = set()
        self.selected: int | None = None
        self.written: Path | None = None

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors.add(report.nodeid)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.selected = len(session.items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.selected = len(ids)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        properties = [
            value
            for name, value in report.user_properties
            if name == PROPERTY and isinstance(value, dict)
        ]
        if not properties:
            return  # not an e2e test
        test = self.tests.setdefault(
            report.nodeid,
            {
                "nodeid": report.nodeid,
                "outcome": None,
                "failed_in": None,
                "reason": None,
                "durations": {},
                "figures": {},
            },
        )
        test.update(properties[-1])
        for name, value in report.user_properties:
            if name == FIGURES and isinstance(value, dict):
                test["figures"].update(value)  # a later phase's report has the later values
        test["durations"][report.when] = round(report.duration, 3)
        if report.failed:
            if test["outcome"] != "failed":
                test["outcome"], test["failed_in"] = "failed", report.when
        elif report.skipped:
            test["outcome"] = "xfailed" if hasattr(report, "wasxfail") else "skipped"
            test["reason"] = _skip_reason(report)
        elif report.passed and report.when == "call":
            test["outcome"] = "xpassed" if hasattr(report, "wasxfail") else "passed"

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.config.option.collectonly or not self.tests:
            return
        markexpr = self.config.option.markexpr or None
        phase, part = os.environ.get("REPORTJOBS_TEST_PHASE"), None
        inferred_phase, inferred_part = phase_and_part(markexpr)
        phase = phase or inferred_phase
        part = os.environ.get("REPORTJOBS_TEST_MAP_PART", inferred_part or "") or None
        tests = []
        for test in sorted(self.tests.values(), key=lambda t: str(t["nodeid"])):
            tests.append({**test, "outcome": test["outcome"] or "unfinished"})
        counts: dict[str, int] = {}
        for test in tests:
            counts[test["outcome"]] = counts.get(test["outcome"], 0) + 1
        run = {
            "format": FORMAT,
            "phase": phase,
            "part": part,
            "started": self.started,
            "finished": _utc_now(),
            "commit": self.commit,
            "dirty": self.dirty,
            "image": _image(self.config.rootpath),
            "command": shlex.join(["pytest", *self.config.invocation_params.args]),
            "markexpr": markexpr,
            "workers": getattr(self.config.option, "numprocesses", None),
            "exitstatus": int(exitstatus),
            "selected": self.selected,
            "counts": dict(sorted(counts.items())),
            "collection_errors": sorted(self.collection_errors),
            "tests": tests,
        }
        directory = Path(
            os.environ.get("REPORTJOBS_TEST_MAP_DIR")
            or self.config.rootpath / ".cluster" / "test-map"
        )
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / (f"{phase}.{part}.json" if part else f"{phase}.json")
        partial = target.with_name(target.name + ".tmp")
        partial.write_text(json.dumps(run, indent=2, sort_keys=True, default=str) + "\n")
        partial.replace(target)
        self.written = target
        # The directory holds the phase's last run: a whole-phase run replaces its parts, a
        # part replaces an earlier whole-phase run (and the phase's other parts stay).
        stale = directory.glob(f"{phase}.*.json") if not part else [directory / f"{phase}.json"]
        for path in stale:
            path.unlink(missing_ok=True)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.written is not None:
            count = len(self.tests)
            terminalreporter.write_line(
                f"test map: {count} e2e test{'' if count == 1 else 's'} in {self.written}"
            )


def phase_and_part(markexpr: str | None) -> tuple[str, str | None]:
    """The phase and part a `-m` expression selects: `reliability` when it selects reliability
    tests and no other, else `test`; `serial` or `parallel` when it selects serial tests only
    or non-serial ones only, else no part."""
    if not markexpr:
        return "test", None
    try:
        from _pytest.mark.expression import Expression

        expression = Expression.compile(markexpr)
    except Exception:  # noqa: BLE001 - pytest's own parser will have said what is wrong
        return "test", None
    selected = [markers for markers in _MARKER_SETS if expression.evaluate(_has_any_of(markers))]
    phase = "reliability" if selected and all("reliability" in m for m in selected) else "test"
    serial = {"serial" in markers for markers in selected}
    part = None if len(serial) != 1 else ("serial" if serial == {True} else "parallel")
    return phase, part


def _has_any_of(markers: frozenset[str]) -> Any:
    """A matcher for `Expression.evaluate`: an item with these markers (keyword args aside)."""
    return lambda name, /, **_: name in markers


def _skip_reason(report: pytest.TestReport) -> str | None:
    if hasattr(report, "wasxfail"):
        return str(report.wasxfail) or None
    if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        reason = str(report.longrepr[2])
        return reason.removeprefix("Skipped: ")
    return None


def _utc_now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _git_state(root: Path) -> tuple[str | None, bool | None]:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=60
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    head = git("rev-parse", "HEAD")
    status = git("status", "--porcelain")
    return (
        head.strip() if head else None,
        None if status is None else bool(status.strip()),
    )


def _image(root: Path) -> str | None:
    if os.environ.get("REPORTJOBS_IMAGE"):
        return os.environ["REPORTJOBS_IMAGE"]
    built = root / ".cluster" / "image"
    return built.read_text().strip() if built.is_file() else None
