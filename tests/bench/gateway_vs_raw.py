#!/usr/bin/env python3
"""Benchmark: new submissions through the gateway against raw ReportJob creates, side by side.

One client (aiohttp, C concurrent workers, keep-alive connections) makes, in alternating rounds:
- raw: N ReportJob creates straight to the API server (bodies as the gateway builds them, in the
  release's namespace, so the operator reconciles them as it does the gateway's);
- new: N submissions of new object ids through the gateway (201 each);
- dedup: the same N ids again through the gateway (200 each).
It prints throughput, p50 and p99 of each, the ratios new/raw, the gateway's submission paths
and API requests (from its /metrics), and each gateway pod's RSS (process_resident_memory_bytes).
It prints numbers and never fails on speed. Each phase starts on a quiet control plane: after at
least S seconds, once the API server used less than Q cores over 2 s (the previous phase's
Jobs, pods and Events are made after its last answer, for 10 s and more after a burst of raw
creates). Besides the CPU during each phase, it prints the CPU from the phase's start to the
end of the quiet that follows it: what the phase cost in all. The nodes are cordoned while it
runs, so that no worker pod starts (the Job controller still creates them); at the end the
bench's ReportJobs are deleted, and the nodes uncordoned once their pods are gone.

usage: gateway_vs_raw.py [--kubeconfig .cluster/kubeconfig] [--namespace reportjobs]
                         [--url http://127.0.0.1:30080] [--count 200] [--concurrency 16]
                         [--rounds 2] [--settle 8] [--quiet-cores 0.35] [--quiet-max 240]
                         [--quiet-load 2] [--no-cordon]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl as ssl_
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / d) for d in ("model", "kube", "gateway")]

from reportjobs_kube import paths  # noqa: E402
from reportjobs_kube.config import from_kubeconfig  # noqa: E402
from reportjobs_model import labels  # noqa: E402
from reportjobs_model.naming import object_hash  # noqa: E402
from reportjobs_model.reportjob import build_reportjob  # noqa: E402
from reportjobs_model.window import Claim, removal_write  # noqa: E402

KUBECTL = "/var/cache/reportjobs/k8s-v1.20.2/bin/kubectl"


CPU_OF = {  # the processes on this machine whose CPU each phase costs, by /proc/<pid>/comm
    "kube-apiserver": "kube-apiserver",
    "etcd": "etcd",
    "gateways": "reportjobs-gate",
    "operators": "reportjobs-oper",
}
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> dict[str, float]:
    """User + system CPU seconds so far of the test bed's processes (CPU_OF), and this client's."""
    totals = dict.fromkeys(CPU_OF, 0.0)
    for proc in Path("/proc").iterdir():
        try:
            comm = (proc / "comm").read_text().strip()
            kinds = [kind for kind, name in CPU_OF.items() if comm == name]
            if kinds:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                totals[kinds[0]] += (int(fields[11]) + int(fields[12])) / TICK
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read
    totals["client"] = time.process_time()
    return totals


@dataclass
class Phase:
    name: str
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]
    cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds each process kind used during the phase (cpu_seconds deltas)."""
    cpu_in_all: dict[str, float] = field(default_factory=dict)
    """The same from the phase's start to the end of the quiet after it (`settle`)."""
    started_cpu: dict[str, float] = field(default_factory=dict)
    """cpu_seconds() at the phase's start."""

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies)


async def drive(
    name: str,
    jobs: list[tuple[str, str, bytes, dict[str, str]]],
    *,
    session: aiohttp.ClientSession,
    concurrency: int,
    ssl: ssl_.SSLContext | bool,
) -> Phase:
    queue = list(reversed(jobs))
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def worker() -> None:
        while queue:
            method, url, body, headers = queue.pop()
            started = time.perf_counter()
            async with session.request(method, url, data=body, headers=headers, ssl=ssl) as answer:
                await answer.read()
                statuses[answer.status] = statuses.get(answer.status, 0) + 1
            latencies.append(time.perf_counter() - started)

    return await measured(
        name, worker, concurrency=concurrency, latencies=latencies, statuses=statuses
    )


async def measured(
    name: str,
    worker: Callable[[], Awaitable[None]],
    *,
    concurrency: int,
    latencies: list[float],
    statuses: dict[int, int],
) -> Phase:
    """Run `concurrency` workers to the end: the phase, with the wall time and the CPU it took
    (the workers fill `latencies` and `statuses`)."""
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu = {kind: used - cpu_before[kind] for kind, used in cpu_seconds().items()}
    return Phase(name, elapsed, latencies, statuses, cpu, started_cpu=cpu_before)


async def settle(args: argparse.Namespace, after: Phase | None = None) -> float:
    """Wait at least `--settle` seconds, then until the API server used less than
    `--quiet-cores` cores over 2 s (at most `--quiet-max` seconds): how long it waited. With
    `after`, the phase's CPU up to now is recorded as its cost in all."""
    started = time.monotonic()
    await asyncio.sleep(args.settle)
    while time.monotonic() - started < args.quiet_max:
        before = cpu_seconds()["kube-apiserver"]
        await asyncio.sleep(2)
        if (cpu_seconds()["kube-apiserver"] - before) / 2 < args.quiet_cores:
            break
    waited = time.monotonic() - started
    if after is not None:
        after.cpu_in_all = {
            kind: used - after.started_cpu[kind] for kind, used in cpu_seconds().items()
        }
    return waited


def kubectl(kubeconfig: str, *args: str) -> str:
    return subprocess.run(
        [KUBECTL, "--kubeconfig", kubeconfig, *args], check=True, capture_output=True, text=True
    ).stdout


async def gateway_metrics(session: aiohttp.ClientSession, url: str, pods: int) -> dict[str, str]:
    """/metrics of each gateway pod (the Service picks one per connection: ask until all seen)."""
    seen: dict[str, str] = {}
    for _ in range(60):
        async with aiohttp.ClientSession() as fresh, fresh.get(f"{url}/metrics") as answer:
            seen[answer.headers.get("X-Served-By", "?")] = await answer.text()
        if len(seen) >= pods:
            break
    return seen


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def show(phase: Phase) -> None:
    print(
        f"{phase.name:>14}: n={len(phase.latencies)} {phase.rate:7.1f}/s "
        f"p50={phase.p50 * 1000:6.1f} ms p99={phase.pct(0.99) * 1000:6.1f} ms "
        f"max={max(phase.latencies) * 1000:6.1f} ms statuses={phase.statuses}"
    )
    if phase.cpu:
        each = ", ".join(
            f"{kind} {used * 1000 / len(phase.latencies):.2f}" for kind, used in phase.cpu.items()
        )
        print(f"{'':>14}  CPU ms per request (during the phase): {each}")
    if phase.cpu_in_all:
        each = ", ".join(
            f"{kind} {used * 1000 / len(phase.latencies):.2f}"
            for kind, used in phase.cpu_in_all.items()
        )
        print(f"{'':>14}  CPU ms per request (the phase and the quiet after it): {each}")


def cost(cpu: dict[str, float], phase: Phase) -> float:
    """CPU seconds per request, all the processes counted together (NaN without figures)."""
    return sum(cpu.values()) / len(phase.latencies) if cpu else float("nan")


def combined(name: str, phases: list[Phase]) -> Phase:
    """The rounds of one kind as one phase."""
    cpu = {kind: sum(p.cpu.get(kind, 0.0) for p in phases) for kind in phases[0].cpu}
    in_all = {
        kind: sum(p.cpu_in_all.get(kind, 0.0) for p in phases) for kind in phases[0].cpu_in_all
    }
    latencies = [x for p in phases for x in p.latencies]
    return Phase(name, sum(p.seconds for p in phases), latencies, {}, cpu, in_all)


async def main_async(args: argparse.Namespace) -> None:
    connection = from_kubeconfig(Path(args.kubeconfig))
    auth = connection.credentials.authorization()
    api_headers = {"content-type": "application/json", **({"Authorization": auth} if auth else {})}
    gw_headers = {"content-type": "application/json"}
    run = uuid.uuid4().hex[:8]
    connector = aiohttp.TCPConnector(limit=args.concurrency * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        before = await gateway_metrics(session, args.url, args.gateways)
        results: dict[str, list[Phase]] = {"raw": [], "new": [], "dedup": []}
        now = int(time.time())
        for round_ in range(args.rounds):
            raw_jobs = []
            for i in range(args.count):
                claim = Claim.new(
                    object_id=f"raw-{run}-{round_}-{i}",
                    now=now,
                    window_seconds=300,
                    timeout_seconds=60,
                )
                body = build_reportjob(object_id=f"raw-{run}-{round_}-{i}", claim=claim)
                url = connection.server + paths.reportjobs(args.namespace)
                raw_jobs.append(("POST", url, json.dumps(body).encode(), api_headers))
            ids = [f"gw-{run}-{round_}-{i}" for i in range(args.count)]
            new_jobs = [
                ("POST", f"{args.url}/jobs", json.dumps({"object_id": o}).encode(), gw_headers)
                for o in ids
            ]
            phases = (
                ("raw", "raw creates", raw_jobs, connection.ssl),
                ("new", "new (gateway)", new_jobs, False),
                ("dedup", "dedup (gateway)", new_jobs, False),
            )
            if round_ == 0:
                await settle(args)
            quiet = []
            for kind, name, jobs, ssl in phases:
                phase = await drive(
                    name, jobs, session=session, concurrency=args.concurrency, ssl=ssl
                )
                results[kind].append(phase)
                quiet.append(f"{await settle(args, after=phase):.0f} s after {kind}")
            for kind in ("raw", "new", "dedup"):
                show(results[kind][-1])
            raw, new = results["raw"][-1], results["new"][-1]
            print(
                f"{'round ' + str(round_ + 1):>14}: new/raw throughput {new.rate / raw.rate:.2f}, "
                f"p50 {new.p50 / raw.p50:.2f}x, p99 {new.pct(0.99) / raw.pct(0.99):.2f}x"
            )
            print(f"{'':>14}  quiet again: {', '.join(quiet)}")
        after = await gateway_metrics(session, args.url, args.gateways)
    raw, new, dedup = (combined(kind, results[kind]) for kind in ("raw", "new", "dedup"))
    print(f"\nall rounds, concurrency {args.concurrency}:")
    for phase in (raw, new, dedup):
        show(phase)
    for phase in (new, dedup):
        print(
            f"{phase.name}/raw: throughput {phase.rate / raw.rate:.2f}, "
            f"p50 {phase.p50 / raw.p50:.2f}x, p99 {phase.pct(0.99) / raw.pct(0.99):.2f}x, "
            f"CPU per request during the phase {cost(phase.cpu, phase) / cost(raw.cpu, raw):.2f}x,"
            f" with the quiet after it "
            f"{cost(phase.cpu_in_all, phase) / cost(raw.cpu_in_all, raw):.2f}x"
        )
    for pod, text in sorted(after.items()):
        was = before.get(pod, "")
        rss = metric(text, "process_resident_memory_bytes") / 2**20
        paths_ = {
            p: metric(text, "reportjobs_gateway_submission_paths_total", path=p)
            - metric(was, "reportjobs_gateway_submission_paths_total", path=p)
            for p in ("cached", "cached_shard", "api")
        }
        requests = {
            f"{v} {r}": metric(text, "reportjobs_api_requests_total", verb=v, resource=r)
            - metric(was, "reportjobs_api_requests_total", verb=v, resource=r)
            for v, r in (
                ("get", "configmaps"),
                ("patch", "configmaps"),
                ("update", "configmaps"),
                ("create", "configmaps"),
                ("get", "reportjobs"),
                ("create", "reportjobs"),
            )
        }
        cpu = metric(text, "process_cpu_seconds_total") - metric(was, "process_cpu_seconds_total")
        lost = metric(text, "reportjobs_gateway_lost_claim_writes_total") - metric(
            was, "reportjobs_gateway_lost_claim_writes_total"
        )
        delays = []
        for delay in ("none", "lost"):
            counts = [
                metric(text, f"reportjobs_gateway_claim_seconds_{part}", **labels)
                - metric(was, f"reportjobs_gateway_claim_seconds_{part}", **labels)
                for part, labels in (
                    ("count", {"delay": delay}),
                    ("bucket", {"delay": delay, "le": "0.25"}),
                )
            ]
            delays.append(f"{delay} {counts[0]:.0f} ({counts[0] - counts[1]:.0f} over 250 ms)")
        print(
            f"gateway {pod}: RSS {rss:.1f} MiB; CPU {cpu:.1f} s over the run; paths {paths_}; "
            f"lost claim writes {lost:.0f}; claims by delay: {', '.join(delays)}; "
            f"API requests {requests}"
        )
    args.run = run


def wait_for_quiet(below: float, *, seconds: float = 600) -> None:
    """Until the 1-minute load average is below `below` (or `seconds` passed): it is printed."""
    deadline = time.monotonic() + seconds
    while os.getloadavg()[0] >= below and time.monotonic() < deadline:
        time.sleep(5)
    print("load average at the start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kubeconfig", default=str(REPO / ".cluster" / "kubeconfig"))
    parser.add_argument("--namespace", default="reportjobs")
    parser.add_argument("--url", default="http://127.0.0.1:30080")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--gateways", type=int, default=2, help="gateway pods to read /metrics of")
    parser.add_argument(
        "--settle",
        type=float,
        default=8.0,
        help="seconds to wait at least before each phase (the operator catches up with the "
        "previous one)",
    )
    parser.add_argument(
        "--quiet-cores",
        type=float,
        default=0.35,
        help="then, until the API server used less than this many cores over 2 s (its idle use "
        "on the test bed is about 0.12)",
    )
    parser.add_argument(
        "--quiet-max",
        type=float,
        default=240.0,
        help="seconds to wait for that at most (the phase starts then anyway)",
    )
    parser.add_argument(
        "--quiet-load",
        type=float,
        default=2.0,
        help="first wait (up to 10 min) until the machine's 1-minute load average is below this "
        "(an earlier run's clean-up, a mass deletion, drives it to 100 and more)",
    )
    parser.add_argument("--no-cordon", action="store_true")
    args = parser.parse_args()
    wait_for_quiet(args.quiet_load)
    nodes = kubectl(args.kubeconfig, "get", "nodes", "-o", "name").split()
    if not args.no_cordon:
        for node in nodes:
            kubectl(args.kubeconfig, "cordon", node)
    try:
        asyncio.run(main_async(args))
    finally:
        try:
            cleanup(args)  # before the uncordon, so that the Pending pods never run
        finally:
            if not args.no_cordon:
                for node in nodes:
                    kubectl(args.kubeconfig, "uncordon", node)


def cleanup(args: argparse.Namespace) -> None:
    """Delete the bench's ReportJobs (their Jobs and pods go with them), C at a time."""
    run = getattr(args, "run", None)
    if run is None:
        return
    hashes = {
        object_hash(f"{kind}-{run}-{r}-{i}")
        for kind in ("raw", "gw")
        for r in range(args.rounds)
        for i in range(args.count)
    }
    names = kubectl(args.kubeconfig, "-n", args.namespace, "get", "reportjobs", "-o", "name")
    mine = [n.rsplit("/", 1)[-1] for n in names.split()]
    mine = [n for n in mine if n.split("-")[1] in hashes]
    new = {object_hash(f"gw-{run}-{r}-{i}") for r in range(args.rounds) for i in range(args.count)}
    created = sum(1 for n in mine if n.split("-")[1] in new)
    print(
        f"ReportJobs of the gateway's new jobs (created after their 201): {created} of {len(new)}"
    )
    # A claim without its ReportJob is completed by the operator (docs/design.md): the bench's
    # claims go first, then its ReportJobs.
    asyncio.run(_forget_claims(args, hashes))
    print(f"cleaning up: deleting the bench's {len(mine)} ReportJobs")
    asyncio.run(_delete(args, mine))
    _wait_for_pods_gone(args, set(mine))


def _wait_for_pods_gone(
    args: argparse.Namespace, reportjobs: set[str], seconds: float = 1800
) -> None:
    """Until no worker pod of the bench's ReportJobs is left (the garbage collector deletes them
    after their Jobs): the nodes are uncordoned only then, so that none of them starts."""
    started = time.monotonic()
    left = -1
    while time.monotonic() - started < seconds:
        names = kubectl(
            args.kubeconfig,
            "-n",
            args.namespace,
            "get",
            "pods",
            "-l",
            labels.REPORTJOB,
            "-o",
            "jsonpath={range .items[*]}{.metadata.labels.reportjobs\\.io/reportjob}{'\\n'}{end}",
        ).split()
        left = sum(1 for name in names if name in reportjobs)
        if not left:
            break
        time.sleep(5)
    print(f"cleaning up: {left} of the bench's pods left after {time.monotonic() - started:.0f} s")


async def _forget_claims(args: argparse.Namespace, hashes: set[str]) -> None:
    """Remove the bench's claims from the window shards, as the operator's sweep removes claims
    (`removal_write`: a JSON patch that tests what it removes and gives the shard a new epoch)."""
    connection = from_kubeconfig(Path(args.kubeconfig))
    auth = connection.credentials.authorization()
    headers = {"Authorization": auth} if auth else {}
    url = connection.server + paths.configmaps(args.namespace)
    selector = "app.kubernetes.io/component=dedup-windows"
    removed = 0
    async with aiohttp.ClientSession() as session:
        for _ in range(10):
            async with session.get(
                url, params={"labelSelector": selector}, headers=headers, ssl=connection.ssl
            ) as answer:
                shards = (await answer.json())["items"]
            conflicts = 0
            for shard in shards:
                mine = [key for key in shard.get("data") or {} if key in hashes]
                if not mine:
                    continue
                write = removal_write(shard, keys=mine)
                name = shard["metadata"]["name"]
                if write.patch is not None:
                    method, body, kind = "PATCH", write.patch, "application/json-patch+json"
                else:
                    method, body, kind = "PUT", write.replacement, "application/json"
                async with session.request(
                    method,
                    f"{url}/{name}",
                    data=json.dumps(body).encode(),
                    headers={**headers, "content-type": kind},
                    ssl=connection.ssl,
                ) as answer:
                    if answer.status in (409, 422):  # written meanwhile: list again
                        conflicts += 1
                        continue
                    answer.raise_for_status()
                removed += len(mine)
            if not conflicts:
                break
    print(f"cleaning up: removed the bench's {removed} claims from the window shards")


async def _delete(args: argparse.Namespace, names: list[str]) -> None:
    connection = from_kubeconfig(Path(args.kubeconfig))
    auth = connection.credentials.authorization()
    headers = {"Authorization": auth} if auth else {}
    jobs = [
        ("DELETE", connection.server + paths.reportjobs(args.namespace, name), b"", headers)
        for name in names
    ]
    async with aiohttp.ClientSession() as session:
        await drive(
            "delete", jobs, session=session, concurrency=args.concurrency, ssl=connection.ssl
        )


if __name__ == "__main__":
    main()
