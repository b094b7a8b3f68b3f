#!/usr/bin/env python3
"""Benchmark: the operator's memory with 1,000 and 5,000 ReportJobs present. Prints numbers;
asserts nothing (the issue's target, RSS <= 150 MiB at 5,000 under a 256 MiB limit, is printed
next to the figure).

Both nodes are cordoned, so no worker pod ever runs (the Job controller still creates the pods;
they stay Pending and the operator indexes them). The chart is installed in a fresh namespace
(1 gateway, 1 operator, tolerating the cordon). After one warm-up ReportJob, ReportJobs are created
straight through the API (bodies as the gateway builds them) up to `--steps` present (default
1,000 then 5,000); after each step the script waits until the operator's index holds every Job
(`reportjobs_operator_index_objects{kind="job"}`) and, within `--pod-wait` s, every pod, then
`--settle` s, and reads the operator's RSS two ways: `process_resident_memory_bytes` from its
/metrics (through the API server's pod proxy) and `VmRSS` / `VmHWM` of its process
(/proc/<pid>/status, the process whose environment holds the pod's POD_NAME). During the last
step's burst `py-spy record` samples the operator process for `--profile` s (skipped when
py-spy is missing or cannot attach). At the end: the container restarts of the operator and
gateway pods, and the operator's /healthz.

Whatever happens, the `finally` deletes the ReportJobs, waits until none of their Jobs and pods
exists, uninstalls the release, deletes the namespace and only then uncordons the nodes.

usage: operator_memory.py [--kubeconfig .cluster/kubeconfig] [--steps 1000,5000]
                          [--concurrency 16] [--profile 20] [--json FILE]
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client

sys.path.insert(0, str(Path(__file__).resolve().parent))
from operator_cost import (  # the sibling script
    REPO_ROOT,
    create_reportjob_body,
    helmctl,
    metric,
    operator_get,
    operator_metrics,
    operator_pod,
    release_values,
    reportjob_body,
    run_cordoned,
    wait_until,
    warm_up,
)

from reportjobs_model import labels

MIB = 1024 * 1024
TARGET_MIB = 150


def operator_pids(core: client.CoreV1Api, namespace: str) -> list[int]:
    """The processes on this machine whose environment holds the operator pod's POD_NAME."""
    wanted = f"POD_NAME={operator_pod(core, namespace).metadata.name}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and wanted in (proc / "environ").read_bytes().split(b"\0"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def proc_status_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def main_pid(pids: list[int]) -> int | None:
    """The operator's Python process (the largest, if the container has a wrapper)."""
    best = None
    for pid in pids:
        try:
            rss = proc_status_kib(pid).get("VmRSS", 0)
        except OSError:
            continue
        if best is None or rss > best[1]:
            best = (pid, rss)
    return best[0] if best else None


def reading(core: client.CoreV1Api, namespace: str, label: str, present: int) -> dict[str, Any]:
    values = operator_metrics(core, namespace)
    pid = main_pid(operator_pids(core, namespace))
    status = proc_status_kib(pid) if pid else {}
    row = {
        "label": label,
        "reportjobs_present": present,
        "index": {
            k: int(metric(values, "reportjobs_operator_index_objects", kind=k))
            for k in ("reportjob", "job", "pod")
        },
        "rss_metrics_mib": metric(values, "process_resident_memory_bytes") / MIB,
        "vmrss_mib": status.get("VmRSS", 0) / 1024 if status else None,
        "vmhwm_mib": status.get("VmHWM", 0) / 1024 if status else None,
        "queue_depth": metric(values, "reportjobs_operator_queue_depth"),
        "pid": pid,
    }
    print(
        f"  {label:<6} present={present:>5} index rj/job/pod="
        f"{row['index']['reportjob']}/{row['index']['job']}/{row['index']['pod']} "
        f"RSS(metrics)={row['rss_metrics_mib']:.1f} MiB "
        f"VmRSS={row['vmrss_mib'] or 0:.1f} MiB VmHWM={row['vmhwm_mib'] or 0:.1f} MiB",
        flush=True,
    )
    return row


def index_count(core: client.CoreV1Api, namespace: str, kind: str) -> int:
    try:
        values = operator_metrics(core, namespace)
    except Exception:  # noqa: BLE001 - a busy proxy: try again
        return -1
    return int(metric(values, "reportjobs_operator_index_objects", kind=kind))


def create_many(api: client.ApiClient, namespace: str, run: str, start: int, stop: int,
                concurrency: int) -> float:  # fmt: skip
    creates = [
        create_reportjob_body(api, namespace, reportjob_body(f"bench-mem-{run}-{i}"))
        for i in range(start, stop)
    ]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(lambda create: create(), creates))
    return time.monotonic() - started


class Profile(threading.Thread):
    """py-spy record of one process for some seconds, in the background (collapsed stacks)."""

    def __init__(self, pid: int, seconds: int, out: Path) -> None:
        super().__init__(daemon=True)
        self.pid, self.seconds, self.out = pid, seconds, out
        self.error: str | None = None

    def run(self) -> None:
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        command = [
            py_spy, "record", "--pid", str(self.pid), "--duration", str(self.seconds),
            "--rate", "100", "--format", "raw", "--nonblocking", "--output", str(self.out),
        ]  # fmt: skip
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=self.seconds + 60
            )
            if done.returncode != 0:
                self.error = done.stderr.strip()[-500:]
        except (OSError, subprocess.TimeoutExpired) as error:
            self.error = str(error)


GENERIC = ("asyncio/", "threading.py", "socketserver.py", "<module>", "reportjobs_operator/main.py")


def generic(frame: str) -> bool:
    """A frame every busy stack of the event loop holds (the loop, the entry point)."""
    return any(part in frame for part in GENERIC)


def plain(frame: str) -> str:
    """`function (file.py:123)` -> `function (file.py)`: a function, not one line of it."""
    function, _, where = frame.partition(" (")
    return f"{function} ({where.rsplit(':', 1)[0]})" if where else function


def summarise_profile(path: Path, top: int = 12) -> dict[str, Any]:
    """Collapsed stacks -> the frames with the most samples: on top (self) and anywhere (total).
    Samples waiting in a selector (the idle event loop, the health server's thread) are counted
    apart: the percentages are of the busy samples."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frames[-1].split(" (")[0].endswith("Selector.select"):
            idle += count
            continue
        samples += count
        own[frames[-1]] += count
        for function in {plain(frame) for frame in frames if not generic(frame)}:
            total[function] += count
    print(f"\nprofile: {samples} busy samples of the operator process, {idle} idle ({path})")
    print("  self (the frame on top of the stack):")
    for frame, count in own.most_common(top):
        print(f"    {100 * count / max(samples, 1):5.1f}%  {frame}")
    print("  total (the function anywhere on the stack; event loop and entry point left out):")
    for frame, count in total.most_common(top + 8):
        print(f"    {100 * count / max(samples, 1):5.1f}%  {frame}")
    return {
        "samples": samples,
        "idle_samples": idle,
        "self": [[f, c / max(samples, 1)] for f, c in own.most_common(top)],
        "total": [[f, c / max(samples, 1)] for f, c in total.most_common(top + 8)],
    }


def restarts(core: client.CoreV1Api, namespace: str) -> dict[str, int]:
    found = {}
    for pod in core.list_namespaced_pod(namespace, label_selector=labels.COMPONENT).items:
        component = pod.metadata.labels.get(labels.COMPONENT, "?")
        if component not in ("operator", "gateway"):
            continue
        count = sum(s.restart_count for s in pod.status.container_statuses or [])
        found[f"{component} {pod.metadata.name}"] = count
    return found


def run_bench(
    api: client.ApiClient, args: argparse.Namespace, namespace: str, run: str
) -> dict[str, Any]:
    core = client.CoreV1Api(api)
    helmctl(
        "deploy", kubeconfig=args.kubeconfig, namespace=namespace, values=release_values(args.image)
    )
    warm_up(api, namespace, run)
    time.sleep(args.settle)  # idle: the warm-up is gone, the index holds nothing of ours
    print("\noperator memory (ReportJobs present, after every Job is in the operator's index):")
    rows = [reading(core, namespace, "idle", 0)]
    profile: dict[str, Any] | None = None
    profile_error: str | None = None
    present = 0
    for step, target in enumerate(args.steps):
        profiler = None
        if step == len(args.steps) - 1 and args.profile > 0:
            pid = main_pid(operator_pids(core, namespace))
            if pid is None:
                profile_error = "no operator process found on this machine"
            else:
                profiler = Profile(pid, args.profile, Path(args.profile_out))
                profiler.start()
        seconds = create_many(api, namespace, run, present, target, args.concurrency)
        print(f"  created {target - present} ReportJobs in {seconds:.1f} s", flush=True)
        present = target
        started = time.monotonic()
        wait_until(
            lambda n=present: index_count(core, namespace, "job") >= n,
            timeout=900,
            what=f"{present} Jobs in the operator's index",
        )
        jobs_seconds = time.monotonic() - started
        try:
            wait_until(
                lambda n=present: index_count(core, namespace, "pod") >= n,
                timeout=args.pod_wait,
                what=f"{present} pods in the operator's index",
            )
        except TimeoutError as error:
            print(f"  ({error}; reading anyway)")
        time.sleep(args.settle)
        label = f"{present // 1000}k" if present % 1000 == 0 else str(present)
        row = reading(core, namespace, label, present)
        row["seconds_until_jobs_indexed"] = jobs_seconds
        rows.append(row)
        if profiler is not None:
            profiler.join()
            if profiler.error:
                profile_error = profiler.error
            elif Path(args.profile_out).exists():
                profile = summarise_profile(Path(args.profile_out))
    if profile_error:
        print(f"\nprofile: not taken ({profile_error})")
    restart_counts = restarts(core, namespace)
    try:
        healthz = json.loads(operator_get(core, namespace, "/healthz"))
    except Exception as error:  # noqa: BLE001 - reported
        healthz = {"error": str(error)}
    return report(rows, restart_counts, healthz, profile)


def report(
    rows: list[dict[str, Any]],
    restart_counts: dict[str, int],
    healthz: dict[str, Any],
    profile: dict[str, Any] | None,
) -> dict[str, Any]:
    print(
        f"\n{'':<10} {'present':>8} {'RSS (metrics) MiB':>18} {'VmRSS MiB':>10} {'VmHWM MiB':>10}"
    )
    for row in rows:
        print(f"{row['label']:<10} {row['reportjobs_present']:>8} {row['rss_metrics_mib']:>18.1f} "
              f"{row['vmrss_mib'] or 0:>10.1f} {row['vmhwm_mib'] or 0:>10.1f}")  # fmt: skip
    idle, last = rows[0], rows[-1]
    per_1k = (
        (last["rss_metrics_mib"] - idle["rss_metrics_mib"]) * 1000 / last["reportjobs_present"]
        if last["reportjobs_present"]
        else 0.0
    )
    print(f"memory per 1,000 ReportJobs (idle -> {last['label']}): {per_1k:.1f} MiB")
    for before, after in itertools.pairwise(rows[1:]):
        added = after["reportjobs_present"] - before["reportjobs_present"]
        step = (after["rss_metrics_mib"] - before["rss_metrics_mib"]) * 1000 / added
        print(
            f"memory per 1,000 ReportJobs ({before['label']} -> {after['label']}): {step:.1f} MiB"
        )
    verdict = "within" if last["rss_metrics_mib"] <= TARGET_MIB else "OVER"
    print(f"RSS at {last['reportjobs_present']}: {last['rss_metrics_mib']:.1f} MiB, "
          f"{verdict} the issue's target of {TARGET_MIB} MiB (limit 256 MiB)")  # fmt: skip
    print(f"container restarts: {restart_counts}")
    print(f"operator /healthz: {healthz}")
    return {
        "rows": rows,
        "mib_per_1000": per_1k,
        "target_mib": TARGET_MIB,
        "restarts": restart_counts,
        "healthz": healthz,
        "profile": profile,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kubeconfig", default=str(REPO_ROOT / ".cluster" / "kubeconfig"))
    parser.add_argument("--image", default=None, help="default: the content of .cluster/image")
    parser.add_argument(
        "--steps", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 5000]
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--pod-wait", type=float, default=180.0)
    parser.add_argument("--profile", type=int, default=20, help="seconds of py-spy; 0: none")
    parser.add_argument("--profile-out", default="/tmp/reportjobs-operator-profile.txt")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    run_cordoned(parser.parse_args(), name="operator-memory", run_bench=run_bench)


if __name__ == "__main__":
    main()
