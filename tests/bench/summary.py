#!/usr/bin/env python3
"""The last step of `make bench`: every benchmark's figures side by side, from the files the
benchmarks left in one directory (gateway.txt, the gateway benchmark's printed output;
operator_cost.json, operator_memory.json and operator_scaling.json, written with --json). A
missing file is said, not fatal. Asserts nothing.

usage: summary.py DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def load(path: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def submit_latency(folder: Path) -> None:
    print('gateway vs raw creates (the gateway benchmark\'s lines from "all rounds" on):')
    try:
        lines = [line for line in (folder / "gateway.txt").read_text().splitlines() if line]
    except OSError:
        print("  (no output)")
        return
    starts = [i for i, line in enumerate(lines) if line.startswith("all rounds")]
    for line in lines[starts[-1] if starts else -12 :]:
        print(f"  {line}")


def operator_cost(figures: dict[str, Any] | None) -> None:
    print("\noperator vs Jobs created directly by the same client (tests/bench/operator_cost.py):")
    if figures is None:
        print("  (no figures)")
        return
    rate, requests = figures["jobs_per_second"], figures["requests_per_job"]
    a_lag, b_lag = figures["create_to_job_seconds"]["a"], figures["create_to_job_seconds"]["b"]
    print(f"  N={figures['count']} concurrency={figures['concurrency']}")
    print(f"  {'':<36} {'A operator':>12} {'B direct':>12} {'A/B, A-B':>10}")
    print(f"  {'Jobs/s':<36} {rate['a']:>12.1f} {rate['b']:>12.1f} {rate['ratio']:>10.2f}")
    print(f"  {'create -> Job seen p50 / p99 (s)':<36} {f'{a_lag[0]:.2f} / {a_lag[1]:.2f}':>12} "
          f"{f'{b_lag[0]:.2f} / {b_lag[1]:.2f}':>12}")  # fmt: skip
    print(f"  {'API requests per job (API server)':<36} {requests['a']:>12.2f} "
          f"{requests['b']:>12.2f} {requests['a_minus_b']:>10.2f}")  # fmt: skip
    print(f"  {'  (as the operator counted them)':<36} {requests['operator_own']:>12.2f}")
    server = figures["cr_to_job_lag_server_seconds"]
    print(f"  {'CR -> Job lag p50 / p99 (s, server)':<36} {f'{server[0]:g} / {server[1]:g}':>12}")


def operator_memory(figures: dict[str, Any] | None) -> None:
    print("\noperator memory (tests/bench/operator_memory.py):")
    if figures is None:
        print("  (no figures)")
        return
    for row in figures["rows"]:
        print(f"  RSS with {row['reportjobs_present']:>5} ReportJobs: "
              f"{row['rss_metrics_mib']:6.1f} MiB (VmRSS {row['vmrss_mib'] or 0:.1f}, "
              f"peak VmHWM {row['vmhwm_mib'] or 0:.1f})")  # fmt: skip
    last = figures["rows"][-1]["rss_metrics_mib"]
    print(f"  per 1,000 ReportJobs: {figures['mib_per_1000']:.1f} MiB; "
          f"target <= {figures['target_mib']} MiB at the last step: {last:.1f} MiB")  # fmt: skip
    print(f"  restarts: {figures['restarts']}; operator /healthz: {figures['healthz']}")
    profile = figures.get("profile")
    if profile:
        print(f"  profile, top functions ({profile['samples']} busy samples):")
        for frame, share in profile["total"][:6]:
            print(f"    {100 * share:5.1f}%  {frame}")


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def operator_scaling(figures: dict[str, Any] | None) -> None:
    print("\noperator replicas side by side, and rebalancing (tests/bench/operator_scaling.py):")
    if figures is None:
        print("  (no figures)")
        return
    print(f"  N={figures['count']} concurrency={figures['concurrency']} "
          f"shards={figures['shards']} lease {figures['lease_duration_seconds']} s")  # fmt: skip
    print(f"  {'R':>2} {'shards/pod':>12} {'Jobs/s':>8} {'x R=1':>6} {'lag p50/p99 (s)':>16} "
          f"{'op CPU ms/job':>14} {'API req/job':>12}")  # fmt: skip
    for run in figures["runs"]:
        spread = "/".join(str(n) for n in sorted(run["shards_per_pod"].values(), reverse=True))
        lag, cpu = run["cr_to_job_lag_server_seconds"], run["operator_cpu_ms_per_job"]
        print(f"  {run['replicas']:>2} {spread:>12} {run['jobs_per_second']:>8.1f} "
              f"{run['ratio_to_r1']:>6.2f} {f'{lag[0]:g} / {lag[1]:g}':>16} "
              f"{'-' if cpu is None else f'{cpu:.2f}':>14} "
              f"{run['requests_per_job']:>12.2f}")  # fmt: skip
    for run in figures["runs"]:
        print(f"  R={run['replicas']} binds: {run['binds']}")
    moved = figures.get("rebalance")
    if not moved:
        print("  rebalance: (not run)")
        return
    up, down = moved["scale_up"], moved["pod_kill"]
    print(f"  rebalance, lease duration {moved['lease_duration_seconds']} s "
          f"(polled every {moved['poll_seconds']:g} s):")  # fmt: skip
    print(f"    2 -> 3 replicas: fair spread after {seconds(up['seconds_to_fair'])} s "
          f"(none over ceil(K/3) at {seconds(up['seconds_to_within_ceil'])} s; "
          f"shards per pod {sorted(up['shards_per_pod'].values(), reverse=True)})")  # fmt: skip
    print(f"    one pod force-deleted: all shards held by live pods after "
          f"{seconds(down['seconds_to_all_held'])} s (it held "
          f"{len(down['shards_it_held'])}; taken by {down['taken_by']})")  # fmt: skip


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    print("\n===== make bench: summary =====")
    submit_latency(folder)
    operator_cost(load(folder / "operator_cost.json"))
    operator_memory(load(folder / "operator_memory.json"))
    operator_scaling(load(folder / "operator_scaling.json"))


if __name__ == "__main__":
    main()
