"""reportjobs-worker: sleeps exactly N seconds within its own timeout, reports JSON, 143 on
SIGTERM."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reportjobs_worker import main as worker

RUN_WORKER = "from reportjobs_worker.main import main; main()"


def test_reports_json_to_the_termination_log(tmp_path: Path) -> None:
    log = tmp_path / "termination-log"
    with pytest.raises(SystemExit) as exit_info:
        worker.main(["--seconds", "0", "--termination-log", str(log)])
    assert exit_info.value.code == 0
    report = json.loads(log.read_text(encoding="utf-8"))
    assert report["sleptSeconds"] == 0
    assert report["timedOut"] is False
    assert report["timeoutSeconds"] is None
    assert report["startedAt"].endswith("Z")
    assert report["finishedAt"].endswith("Z")
    assert report["startedAt"] <= report["finishedAt"]


def test_an_unwritable_log_does_not_fail_the_work(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        worker.main(["--seconds", "0", "--termination-log", str(tmp_path / "no" / "such")])
    assert exit_info.value.code == 0


@pytest.mark.parametrize("seconds", ["-1", "x", "1.5"])
def test_rejects_bad_seconds(seconds: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        worker.parse_args(["--seconds", seconds])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("timeout", ["0", "-1", "x", "1.5"])
def test_rejects_bad_timeouts(timeout: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        worker.parse_args(["--seconds", "1", "--timeout-seconds", timeout])
    assert exit_info.value.code == 2


class FakeClock:
    """time.monotonic and time.sleep on a clock that only moves when slept."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, start: float = 100.0) -> None:
        self.now = start
        self.naps: list[float] = []
        monkeypatch.setattr(worker.time, "monotonic", lambda: self.now)
        monkeypatch.setattr(worker.time, "sleep", self.sleep)

    def sleep(self, seconds: float) -> None:
        self.naps.append(seconds)
        self.now += seconds


def test_work_longer_than_the_timeout_stops_at_the_timeout_and_exits_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock(monkeypatch)
    log = tmp_path / "termination-log"
    with pytest.raises(SystemExit) as exit_info:
        worker.main(["--seconds", "50", "--timeout-seconds", "45", "--termination-log", str(log)])
    assert exit_info.value.code == 0  # not a failure: the Job controller must not retry it
    assert clock.now == 100.0 + 45
    report = json.loads(log.read_text(encoding="utf-8"))
    assert report["timedOut"] is True
    assert (report["sleepSeconds"], report["timeoutSeconds"]) == (50, 45)
    assert report["ranSeconds"] == 45
    assert "sleptSeconds" not in report
    assert report["startedAt"] <= report["finishedAt"]


def test_work_within_the_timeout_runs_to_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock(monkeypatch)
    log = tmp_path / "termination-log"
    with pytest.raises(SystemExit) as exit_info:
        worker.main(["--seconds", "45", "--timeout-seconds", "45", "--termination-log", str(log)])
    assert exit_info.value.code == 0
    assert clock.now == 100.0 + 45
    report = json.loads(log.read_text(encoding="utf-8"))
    assert report["timedOut"] is False
    assert (report["sleptSeconds"], report["timeoutSeconds"], report["ranSeconds"]) == (45, 45, 45)


def test_the_timeout_counts_from_the_workers_own_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Time already spent by the worker (here 3 s) counts; the deadline is began + timeout."""
    clock = FakeClock(monkeypatch)
    began = clock.now
    clock.now += 3
    report = worker.run(seconds=50, timeout_seconds=10, began=began)
    assert clock.naps == [7]
    assert (report["timedOut"], report["ranSeconds"]) == (True, 10)


def test_sleep_until_sleeps_again_after_early_wakeups(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    naps: list[float] = []

    def fake_sleep(seconds: float) -> None:
        naps.append(seconds)
        clock[0] += seconds / 2 if len(naps) <= 2 else seconds  # woken early twice

    monkeypatch.setattr(worker.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(worker.time, "sleep", fake_sleep)
    worker.sleep_until(8)
    assert naps == [8, 4, 2]
    assert clock[0] == 8


def test_sleeps_for_real_then_exits_zero(tmp_path: Path) -> None:
    log = tmp_path / "termination-log"
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", RUN_WORKER, "--seconds", "1", "--termination-log", str(log)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    elapsed = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    assert elapsed >= 1.0
    assert json.loads(log.read_text(encoding="utf-8"))["sleptSeconds"] == 1


def test_times_out_for_real_then_exits_zero(tmp_path: Path) -> None:
    log = tmp_path / "termination-log"
    command = [sys.executable, "-c", RUN_WORKER, "--seconds", "60", "--timeout-seconds", "1"]
    began = time.monotonic()
    done = subprocess.run(
        [*command, "--termination-log", str(log)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - began >= 1.0
    assert "timed out: stopped after 1 seconds" in done.stdout
    report = json.loads(log.read_text(encoding="utf-8"))
    assert (report["timedOut"], report["timeoutSeconds"]) == (True, 1)
    assert 1.0 <= report["ranSeconds"] < 30


def test_sigterm_exits_143_promptly(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            RUN_WORKER,
            "--seconds",
            "60",
            "--termination-log",
            str(tmp_path / "t"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().startswith("sleeping 60")
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=5) == 143
    assert time.monotonic() - began < 2
    assert not (tmp_path / "t").exists()
