"""Faults of the local test bed: its control plane runs as processes on this machine
(`scripts/testbed/local-cluster.sh`), so a test can freeze etcd, restart kube-apiserver and
SIGKILL a pod's processes. None of this is possible on kind (the control plane is inside a
container): `local_testbed_problem` says why, and the tests skip with that reason."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tests.e2e.support.kube import Cluster
from tests.e2e.support.polling import wait_until

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def _pids(pattern: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False)
    return [int(pid) for pid in found.stdout.split()]


def _same_mount_namespace(pid: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink("/proc/self/ns/mnt")
    except OSError:
        return False


def _one_process(pattern: str, what: str) -> int:
    pids = [pid for pid in _pids(pattern) if _same_mount_namespace(pid)]
    if len(pids) != 1:
        raise LookupError(f"expected one {what} process on this machine, found {pids}")
    return pids[0]


def etcd_pid() -> int:
    return _one_process(r"(^|/)etcd .*--data-dir", "etcd")


def apiserver_pid() -> int:
    return _one_process(r"(^|/)kube-apiserver( |$)", "kube-apiserver")


def local_testbed_problem(cluster: Cluster) -> str | None:
    """None when the cluster is the local test bed (etcd and kube-apiserver are processes of
    this machine, in this mount namespace, and the API server is on localhost); else why not."""
    host = urlparse(cluster.api.configuration.host).hostname or ""
    if host not in LOCAL_HOSTS:
        return f"the API server ({host}) is not on this machine"
    try:
        etcd_pid()
        apiserver_pid()
    except LookupError as error:
        return f"not the local test bed (kind?): {error}"
    if os.geteuid() != 0:
        return "signalling the control plane needs root"
    return None


def apiserver_ready(cluster: Cluster) -> bool:
    """GET /readyz answers 200 (with the kubeconfig's credentials)."""
    host = cluster.api.configuration.host.rstrip("/")
    headers = {}
    for auth in cluster.api.configuration.auth_settings().values():
        if auth["in"] == "header" and auth["value"]:
            headers[auth["key"]] = auth["value"]
    try:
        response = cluster.api.rest_client.pool_manager.request(
            "GET", f"{host}/readyz", headers=headers, timeout=5.0, retries=False
        )
    except Exception:  # noqa: BLE001 - down is an answer here
        return False
    return bool(response.status == 200)


@contextmanager
def etcd_frozen() -> Iterator[int]:
    """SIGSTOP etcd for the duration of the block; SIGCONT always follows."""
    pid = etcd_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)


def freeze_etcd(seconds: float) -> None:
    with etcd_frozen():
        time.sleep(seconds)  # the fault's duration, not a wait for a condition


@dataclass(frozen=True)
class Restart:
    old_pid: int
    new_pid: int
    down_seconds: float  # from the kill to /readyz answering 200 again


def _process_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1].startswith("Z")
    except OSError:
        return True


def restart_apiserver(cluster: Cluster, *, ready_timeout: float = 180) -> Restart:
    """Kill kube-apiserver and start it again with the same command line, environment and
    working directory, detached, its output appended to the log it wrote to; wait for /readyz.
    A start that exits is started again (3 tries): the machine is never left without one."""
    pid = apiserver_pid()
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    environ = dict(
        entry.split(b"=", 1)
        for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if b"=" in entry
    )
    cwd = os.readlink(f"/proc/{pid}/cwd")
    log_path = os.readlink(f"/proc/{pid}/fd/2")
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    try:
        wait_until(lambda: _process_gone(pid), timeout=30, interval=0.2, what="apiserver to exit")
    except AssertionError:
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: _process_gone(pid), timeout=30, interval=0.2, what="apiserver killed")
    deadline = time.monotonic() + ready_timeout
    for _attempt in range(3):
        process = _start_detached(argv, environ, cwd, log_path)
        while process.poll() is None and time.monotonic() < deadline:
            if apiserver_ready(cluster):
                down = time.monotonic() - killed_at
                return Restart(old_pid=pid, new_pid=process.pid, down_seconds=down)
            time.sleep(0.5)  # polling /readyz
        if process.poll() is None:
            break  # running but not ready in time
    raise AssertionError(f"kube-apiserver not ready {ready_timeout:.0f}s after its restart")


def _start_detached(
    argv: list[bytes], environ: dict[bytes, bytes], cwd: str, log: str
) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(  # the command line it ran with
            argv,
            env=environ,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def apiserver_back(cluster: Cluster) -> None:
    """Make sure a kube-apiserver runs and is ready (used in `finally` blocks)."""
    wait_until(
        lambda: apiserver_ready(cluster),
        timeout=180,
        interval=1,
        what="kube-apiserver to be ready again",
    )


def pod_processes(namespace: str, pod: str) -> list[int]:
    """The pids of this machine that run for ``pod`` (its containers carry POD_NAME and
    REPORTJOBS_NAMESPACE from the chart's downward API env)."""
    wanted = {f"POD_NAME={pod}".encode(), f"REPORTJOBS_NAMESPACE={namespace}".encode()}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = set((entry / "environ").read_bytes().split(b"\0"))
        except OSError:
            continue
        if wanted <= environ:
            found.append(int(entry.name))
    return found


def _signal(pids: list[int], signum: signal.Signals) -> list[int]:
    signalled = []
    for pid in pids:
        try:
            os.kill(pid, signum)
            signalled.append(pid)
        except ProcessLookupError:
            pass
    return signalled


def kill_pod_processes(namespace: str, pod: str) -> list[int]:
    """SIGKILL every process of this machine that runs for ``pod``. Returns the pids."""
    return _signal(pod_processes(namespace, pod), signal.SIGKILL)


@contextmanager
def pod_paused(namespace: str, pod: str) -> Iterator[list[int]]:
    """SIGSTOP the pod's processes for the duration of the block (a GC stall, a frozen VM);
    SIGCONT always follows."""
    pids = _signal(pod_processes(namespace, pod), signal.SIGSTOP)
    if not pids:
        raise LookupError(f"no process of pod {namespace}/{pod} on this machine")
    try:
        yield pids
    finally:
        _signal(pids, signal.SIGCONT)


AUDIT_LOG = Path("/var/lib/reportjobs-testbed/logs/kube-apiserver-audit.log")
AUDIT_WAIT_SECONDS = 30.0
"""How long a reader told what to expect re-reads the log for it: the API server writes an event
once its response is complete, a moment after the client has seen the answer."""


@dataclass(frozen=True)
class AuditMark:
    """Where the API server's audit log ended at some moment. The API server rotates the log
    (at 100 MB, by renaming it `kube-apiserver-audit-<time>.log`): the inode follows the
    renamed file, and every file written after the mark holds later events."""

    inode: int
    offset: int
    at: float


def audit_mark(cluster: Cluster | None = None) -> AuditMark | None:
    """Mark the audit log's end now (read `job_creates` from there later); None without one.
    Given the ``cluster``, a missing log fails the test on the local test bed, which always
    writes one: a check that reads it must not go blind there."""
    if not AUDIT_LOG.exists():
        if cluster is not None and local_testbed_problem(cluster) is None:
            raise AssertionError(f"the local test bed's audit log {AUDIT_LOG} is missing")
        return None
    stat = AUDIT_LOG.stat()
    return AuditMark(inode=stat.st_ino, offset=stat.st_size, at=time.time())


@dataclass
class _Reading:
    """One pass over the log since a mark: the events that matched, and what was read."""

    events: list[dict[str, Any]]
    files: list[tuple[str, int, int]]  # (file, from offset, to offset)
    lines: int = 0

    def describe(self) -> str:
        read = ", ".join(f"{Path(f).name} [{a}:{b}]" for f, a, b in self.files) or "no file"
        return f"{self.lines} lines read since the mark ({read}), {len(self.events)} matched"


def _read_since(mark: AuditMark, needles: tuple[bytes, ...]) -> _Reading:
    reading = _Reading(events=[], files=[])
    for path in sorted(AUDIT_LOG.parent.glob(AUDIT_LOG.stem + "*.log")):
        stat = path.stat()
        if stat.st_ino == mark.inode:
            start = mark.offset
        elif stat.st_mtime >= mark.at:
            start = 0  # rotated away, or started, after the mark
        else:
            continue
        with path.open("rb") as log:
            log.seek(start)
            for line in log:
                reading.lines += 1
                if not all(needle in line for needle in needles):
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a line cut by a restart
                if event.get("stage") == "ResponseComplete":
                    reading.events.append(event)
            reading.files.append((str(path), start, log.tell()))
    return reading


def _read_until(
    mark: AuditMark,
    needles: tuple[bytes, ...],
    enough: Callable[[list[dict[str, Any]]], str | None],
    *,
    timeout: float,
) -> list[dict[str, Any]]:
    """Read the log since ``mark`` until ``enough`` (what is still missing, or None) is
    satisfied, for at most ``timeout`` s; then fail, saying what was read and what is missing."""
    deadline = time.monotonic() + timeout
    while True:
        reading = _read_since(mark, needles)
        missing = enough(reading.events)
        if missing is None:
            return reading.events
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"the audit log does not show what the test knows happened: {missing}; "
                f"{reading.describe()} in {timeout:.0f}s of reading"
            )
        time.sleep(1)  # the API server writes the event after its answer


def audit_events(
    mark: AuditMark | None,
    *needles: bytes,
    expect_at_least: int = 0,
    timeout: float = AUDIT_WAIT_SECONDS,
) -> list[dict[str, Any]]:
    """The audit events (stage ResponseComplete) logged since ``mark``, in the log and its
    rotations; lines lacking any of ``needles`` are skipped unparsed (it is a big file). Fewer
    than ``expect_at_least`` of them fails the test (after re-reading for ``timeout`` s): the
    caller knows that many requests were made. No mark (no log: kind): none."""
    if mark is None:
        return []

    def enough(events: list[dict[str, Any]]) -> str | None:
        if len(events) >= expect_at_least:
            return None
        return f"{expect_at_least} events with {list(needles)}, found {len(events)}"

    return _read_until(mark, needles, enough, timeout=timeout)


def job_creates(
    namespace: str,
    mark: AuditMark | None,
    *,
    answered: bool = True,
    expect: Collection[str] = (),
    timeout: float = AUDIT_WAIT_SECONDS,
) -> Counter[str] | None:
    """Creates of batch Jobs in ``namespace`` per name since ``mark``, from the test bed's audit
    log (every request at Metadata level) and its rotations; None without a log. By default the
    successful ones (201); with ``answered=False`` every attempt, whatever its answer: a create
    answered 500 (etcd frozen past the API server's timeout) may still have committed.

    ``expect``: names the caller knows were created (the Jobs a watch saw): a name without a
    counted create fails the test (after re-reading for ``timeout`` s), so a log that yields
    nothing, or not the lines the check needs, cannot pass as "no Job created twice". Expect
    with ``answered=False`` wherever the API server may answer a create that committed with
    an error (a loaded or frozen test bed: a Job seen by a watch whose only create was a 500)."""
    if mark is None:
        return None

    def counted(events: list[dict[str, Any]]) -> Counter[str]:
        creates: Counter[str] = Counter()
        for event in events:
            ref = event.get("objectRef") or {}
            if (
                event.get("verb") == "create"
                and ref.get("resource") == "jobs"
                and ref.get("apiGroup") == "batch"
                and ref.get("namespace") == namespace
                and (not answered or (event.get("responseStatus") or {}).get("code") == 201)
            ):
                creates[ref.get("name", "?")] += 1
        return creates

    def enough(events: list[dict[str, Any]]) -> str | None:
        missing = sorted(set(expect) - set(counted(events)))
        if not missing:
            return None
        kind = "create" if not answered else "create answered 201"
        return f"no {kind} of {len(missing)} of the {len(set(expect))} Jobs expected: {missing[:5]}"

    return counted(_read_until(mark, (b'"jobs"', b'"create"'), enough, timeout=timeout))


def requests_by(
    username: str,
    mark: AuditMark | None,
    *,
    expect_at_least: int = 0,
    timeout: float = AUDIT_WAIT_SECONDS,
) -> list[dict[str, Any]] | None:
    """Every request ``username`` made since ``mark`` (watches included: filter them), as the
    API server's audit log recorded them; None without a log. Fewer than ``expect_at_least``
    fails the test (after re-reading for ``timeout`` s)."""
    if mark is None:
        return None
    return audit_events(
        mark,
        f'"username":"{username}"'.encode(),
        expect_at_least=expect_at_least,
        timeout=timeout,
    )
