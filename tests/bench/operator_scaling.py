#!/usr/bin/env python3
"""Benchmark: the sharded operator with 1, 2 and 3 replicas side by side, and how long its shard
Leases take to rebalance. Prints numbers; asserts nothing about speed.

Part 1 (throughput). For each replica count R (`--replicas`, default 1,2,3) the release is
installed, then upgraded, with operator.replicas=R, operator.shards=K (`--shards`) and
operator.leaseDurationSeconds (`--lease-duration`, the chart's 15 by default). The script
waits until the release has settled: R live operator pods (existing, Running, not being
deleted), every one of the K shard Leases (`<leasePrefix>-shard-NN`) held by
one of them and renewed (renewTime + leaseDurationSeconds still ahead, on this machine's clock,
which the test bed's API server and pods share), no pod over its fair share of ceil(K/R) (so
every replica takes part), and every pod's /readyz (through the API server's pod proxy) naming
the shards its Leases say it holds, all of them synced. One warm-up ReportJob per shard goes
through the operators and is deleted; `--idle` s of quiet give the background (lease renewals).
Then, as operator_cost.py's path A, N ReportJobs are created straight through the API (bodies as
the gateway builds them, with the shard label for K shards) at a fixed concurrency; measured:
Jobs/s until every Job exists (client watch), the lag from each ReportJob's creationTimestamp to
its Job's (server timestamps, whole seconds), the API requests of the phase (deltas of the API
server's `apiserver_request_total`, from just before the first create until every Job has its
pod and `--settle` s have passed), and the operator pods' own CPU over the same span, summed over
the replicas: user + system time of each pod's processes on this machine (/proc/<pid>/stat of
the processes whose environment holds the pod's POD_NAME; the test bed's kubelets run their
containers on this host), else the pods' `process_cpu_seconds_total` from their /metrics.
Which resource binds is judged from the CPU of the test bed's processes while the Jobs were
being made (/proc/<pid>/comm, as tests/bench/gateway_vs_raw.py counts it) and the machine's
busy time (/proc/stat). Every ReportJob, Job and pod of R is gone before the next R.

Part 2 (rebalance; `--no-rebalance` skips it). With R=2 settled, the operator Deployment is
scaled to 3 (its scale subresource, not the chart): measured is the time until the K Leases are
spread fairly (3 live pods, each holding at least floor(K/3) and at most ceil(K/3), all K
held), and, as milestones, when the new pod ran, when no pod held more than ceil(K/3) (a spread
that stays short of fair from then on is waited for 4 lease durations at most, then said), and
when every pod reported its shards synced. Then the operator pod holding the most shards is
force-deleted (grace period 0): measured is the time until all K shards are held again by live
pods (renewed Leases; the deleted pod's name never counts, even while its process still renews
on the node), each of its shards' takeover time, and when its processes left this machine.
Leases are polled every `--poll` s, so times are that coarse.

Both nodes are cordoned first, so no worker pod ever runs (the Job controller still creates the
pods; they stay Pending). The chart is installed in a fresh namespace with a toleration for the
cordon, so the gateway and the operators do run. Whatever happens, the `finally` deletes what the
run created, waits until none of its pods exists, deletes the namespace and only then uncordons
the nodes that were schedulable before.

usage: operator_scaling.py [--kubeconfig .cluster/kubeconfig] [--count 300] [--concurrency 8]
                           [--replicas 1,2,3] [--shards 16] [--lease-duration 15] [--settle 5]
                           [--idle 10] [--poll 0.2] [--no-rebalance]
                           [--image localhost/reportjobs:TAG] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

sys.path.insert(0, str(Path(__file__).resolve().parent))
from operator_cost import (  # the sibling script
    HEALTH_PORT,
    OPERATOR_JOBS,
    REPO_ROOT,
    Arrivals,
    Requests,
    create_reportjob_body,
    delete_jobs,
    delta,
    get_raw,
    helmctl,
    lags,
    metric,
    operator_requests,
    percentile,
    release_values,
    request_counts,
    run_cordoned,
    samples,
    timestamp,
)

from reportjobs_model import labels
from reportjobs_model.reportjob import build_reportjob
from reportjobs_model.shards import shard_of_labels
from reportjobs_model.window import Claim

LEASE_PREFIX = "reportjobs-operator"  # reportjobs.operator.leaseName (_helpers.tpl) of RELEASE
OPERATOR_PODS = f"{labels.COMPONENT}=operator"
TICK = os.sysconf("SC_CLK_TCK")
HOST_CPU = {  # /proc/<pid>/comm (15 characters at most) -> what the table calls it
    "kube-apiserver": "kube-apiserver",
    "etcd": "etcd",
    "kube-controller": "kube-controller-manager",
    "kube-scheduler": "kube-scheduler",
    "kubelet": "kubelets",
    "containerd": "containerd",
    "reportjobs-oper": "operators (every release)",
    "reportjobs-gate": "gateways",
}
SATURATED = 0.85  # a share of the machine's cores, or of one core, read as "busy"
FAIR_WAIT_LEASES = 4  # lease durations to wait for a fair spread once none is over its share


# --- the release and its shard Leases ----------------------------------------------------------


def scaling_values(args: argparse.Namespace, replicas: int) -> dict[str, Any]:
    values = release_values(args.image)
    values["operator"] = {
        **values["operator"],
        "replicas": replicas,
        "shards": args.shards,
        "leaseDurationSeconds": args.lease_duration,
    }
    return values


def shard_lease(shard: int) -> str:
    return f"{LEASE_PREFIX}-shard-{shard:02d}"


@dataclass
class Shards:
    """The operator pods and the shard Leases, as read at one moment."""

    count: int
    live: list[str]
    """Operator pods that exist, run and are not being deleted."""
    holder: dict[int, str] = field(default_factory=dict)
    """Shard -> spec.holderIdentity of its Lease ('' when released; absent: no Lease yet)."""
    fresh: set[int] = field(default_factory=set)
    """Shards whose renewTime + leaseDurationSeconds is still ahead."""
    durations: set[int] = field(default_factory=set)
    """The leaseDurationSeconds of the held Leases (a released one says 1)."""

    def held(self) -> dict[int, str]:
        """Shard -> its holder, for the shards a live pod holds and renewed."""
        return {n: h for n, h in self.holder.items() if h in self.live and n in self.fresh}

    def per_pod(self) -> dict[str, int]:
        counts = dict.fromkeys(self.live, 0)
        for holder in self.held().values():
            counts[holder] += 1
        return counts

    def shards_of(self, pod: str) -> list[int]:
        return sorted(n for n, h in self.held().items() if h == pod)

    def missing(self) -> str | None:
        """None when all K shards are held by live pods; else what is not."""
        unheld = sorted(set(range(self.count)) - set(self.held()))
        if not unheld:
            return None
        seen = {n: self.holder.get(n, "(no Lease)") or "(released)" for n in unheld[:4]}
        return f"{len(unheld)} of {self.count} shards not held by a live pod, e.g. {seen}"

    def over_share(self, pods: int) -> str | None:
        """None when `pods` live pods hold all K and none holds more than ceil(K/pods)."""
        if len(self.live) != pods:
            return f"{len(self.live)} live operator pods, not {pods}"
        share = math.ceil(self.count / pods)
        over = {p: n for p, n in self.per_pod().items() if n > share}
        return self.missing() or (f"over ceil(K/{pods})={share}: {over}" if over else None)

    def unfair(self, pods: int) -> str | None:
        """None when `pods` live pods hold all K, each between floor(K/pods) and ceil(K/pods)."""
        low, high = self.count // pods, math.ceil(self.count / pods)
        spread = self.per_pod()
        if len(self.live) == pods and not any(n < low or n > high for n in spread.values()):
            return self.missing()
        return f"{len(self.live)} live pods of {pods} holding {sorted(spread.values())}"


def read_shards(api: client.ApiClient, namespace: str, count: int) -> Shards:
    pods: list[Any] = (
        client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=OPERATOR_PODS).items
    )
    live = sorted(
        str(p.metadata.name)
        for p in pods
        if p.metadata.deletion_timestamp is None and p.status.phase == "Running"
    )
    state = Shards(count, live)
    names = {shard_lease(n): n for n in range(count)}
    leases: list[Any] = client.CoordinationV1Api(api).list_namespaced_lease(namespace).items
    now = time.time()  # the API server's clock: the same machine's
    for lease in leases:
        shard = names.get(str(lease.metadata.name))
        if shard is None:
            continue
        spec = lease.spec
        state.holder[shard] = str(spec.holder_identity or "")
        duration = int(spec.lease_duration_seconds or 0)
        if spec.holder_identity:
            state.durations.add(duration)
        if spec.renew_time is not None and timestamp(spec.renew_time) + duration > now:
            state.fresh.add(shard)
    return state


def pod_get(api: client.ApiClient, namespace: str, pod: str, path: str) -> str:
    """GET a path of one operator pod's health port through the API server's pod proxy."""
    return get_raw(api, f"/api/v1/namespaces/{namespace}/pods/{pod}:{HEALTH_PORT}/proxy{path}")


def readyz(api: client.ApiClient, namespace: str, pod: str) -> dict[str, Any] | None:
    try:
        return dict(json.loads(pod_get(api, namespace, pod, "/readyz")))
    except Exception:  # noqa: BLE001 - not answering yet: asked again
        return None


def pod_metrics(api: client.ApiClient, namespace: str, pods: list[str]) -> dict[str, Any]:
    """Each pod's /metrics as samples ({} for a pod that does not answer)."""
    found: dict[str, Any] = {}
    for pod in pods:
        try:
            found[pod] = samples(pod_get(api, namespace, pod, "/metrics"))
        except Exception:  # noqa: BLE001 - reported as missing figures
            found[pod] = {}
    return found


def not_synced(api: client.ApiClient, namespace: str, state: Shards) -> str | None:
    """None when every live pod's /readyz names the shards its Leases say it holds, all synced."""
    for pod in state.live:
        ready = readyz(api, namespace, pod)
        if ready is None:
            return f"{pod}: no answer from /readyz"
        if ready.get("identity") != pod:
            return f"{pod}: /readyz says identity {ready.get('identity')!r}"
        held = state.shards_of(pod)
        says = sorted(int(n) for n in ready.get("shards") or [])
        if says != held:
            return f"{pod}: /readyz says it holds {says}, its Leases say {held}"
        unsynced = sorted(set(held) - {int(n) for n in ready.get("synced") or []})
        if unsynced:
            return f"{pod}: shards {unsynced} not synced yet"
    return None


def not_settled(api: client.ApiClient, namespace: str, count: int, replicas: int) -> str | None:
    state = read_shards(api, namespace, count)
    return state.over_share(replicas) or not_synced(api, namespace, state)


def wait_for(
    probe: Callable[[], str | None], *, timeout: float, what: str, every: float = 1.0
) -> float:
    """Poll until `probe` answers None (else it answers what is still missing); the seconds."""
    started = time.monotonic()
    missing = probe()
    while missing is not None:
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}: {missing}")
        time.sleep(every)  # polling
        missing = probe()
    return time.monotonic() - started


def settle(api: client.ApiClient, args: argparse.Namespace, namespace: str, replicas: int) -> float:
    seconds = wait_for(
        lambda: not_settled(api, namespace, args.shards, replicas),
        timeout=args.settle_timeout,
        what=f"{replicas} operator pods holding the {args.shards} shards, synced",
    )
    state = read_shards(api, namespace, args.shards)
    print(f"  settled in {seconds:.1f} s: shards per pod {state.per_pod()}", flush=True)
    return seconds


# --- CPU ---------------------------------------------------------------------------------------


def stat_seconds(pid: str) -> float:
    """User + system CPU seconds of one process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_busy_seconds() -> float:
    """CPU seconds the machine spent busy, all cores (/proc/stat: not idle, not iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / TICK


def host_cpu() -> dict[str, float]:
    """CPU seconds so far of the test bed's processes by kind, this client's and the machine's."""
    totals = dict.fromkeys(HOST_CPU.values(), 0.0)
    for proc in Path("/proc").iterdir():
        try:
            kind = (
                HOST_CPU.get((proc / "comm").read_text().strip()) if proc.name.isdigit() else None
            )
            if kind:
                totals[kind] += stat_seconds(proc.name)
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read
    totals["client"] = time.process_time()
    totals["machine"] = machine_busy_seconds()
    return totals


def pod_pids(pods: list[str]) -> dict[str, list[str]]:
    """The processes on this machine whose environment holds one of the pods' POD_NAME."""
    wanted = {f"POD_NAME={pod}".encode(): pod for pod in pods}
    found: dict[str, list[str]] = {pod: [] for pod in pods}
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit():
                for entry in (proc / "environ").read_bytes().split(b"\0"):
                    if entry in wanted:
                        found[wanted[entry]].append(proc.name)
        except OSError:
            continue
    return found


def pod_cpu(pods: list[str]) -> dict[str, dict[str, float]]:
    """Pod -> {pid: CPU seconds so far} of its processes on this machine."""
    found: dict[str, dict[str, float]] = {}
    for pod, pids in pod_pids(pods).items():
        found[pod] = {}
        for pid in pids:
            try:
                found[pod][pid] = stat_seconds(pid)
            except (OSError, ValueError, IndexError):
                continue
    return found


@dataclass
class CpuReading:
    host: dict[str, float]
    pods: dict[str, dict[str, float]]


def cpu_reading(pods: list[str]) -> CpuReading:
    return CpuReading(host_cpu(), pod_cpu(pods))


def host_delta(before: CpuReading, after: CpuReading) -> dict[str, float]:
    return {kind: after.host[kind] - before.host.get(kind, 0.0) for kind in after.host}


def pods_delta(before: CpuReading, after: CpuReading) -> dict[str, float] | None:
    """Each pod's CPU seconds between two readings (its processes then); None where some pod's
    processes were not visible on this machine."""
    if not after.pods or any(not pids for pids in after.pods.values()):
        return None
    return {
        pod: sum(seconds - before.pods.get(pod, {}).get(pid, 0.0) for pid, seconds in pids.items())
        for pod, pids in after.pods.items()
    }


def metrics_cpu(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float] | None:
    """Each pod's process_cpu_seconds_total delta; None when some pod did not answer."""
    if any(not after.get(pod) or not before.get(pod) for pod in after):
        return None
    return {
        pod: metric(after[pod], "process_cpu_seconds_total")
        - metric(before[pod], "process_cpu_seconds_total")
        for pod in after
    }


def restarts(api: client.ApiClient, namespace: str) -> dict[str, int]:
    pods: list[Any] = (
        client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=OPERATOR_PODS).items
    )
    return {
        str(p.metadata.name): sum(s.restart_count for s in p.status.container_statuses or [])
        for p in pods
    }


# --- creating ReportJobs -----------------------------------------------------------------------


def reportjob_body(object_id: str, shards: int) -> dict[str, Any]:
    """A ReportJob as the gateway builds it (its bucket label names its shard for any K)."""
    claim = Claim.new(object_id=object_id, now=time.time(), window_seconds=300, timeout_seconds=60)
    return dict(build_reportjob(object_id=object_id, claim=claim))


def shard_of(body: dict[str, Any], shards: int) -> int | None:
    return shard_of_labels(body["metadata"].get("labels"), shards=shards)


def warm_up(api: client.ApiClient, args: argparse.Namespace, namespace: str, name: str) -> None:
    """One ReportJob per shard through the operators (every replica makes a Job), then deleted."""
    bodies: dict[int | None, dict[str, Any]] = {}
    for i in range(100 * args.shards):
        body = reportjob_body(f"bench-{name}-warm-up-{i}", args.shards)
        bodies.setdefault(shard_of(body, args.shards), body)
        if len(bodies) >= args.shards or None in bodies:
            break  # every shard has one (or the bodies name no shard: one is enough)
    for body in bodies.values():
        create_reportjob_body(api, namespace, body)()
    batch = client.BatchV1Api(api)

    def missing() -> str | None:
        made = len(batch.list_namespaced_job(namespace, label_selector=OPERATOR_JOBS).items)
        return None if made >= len(bodies) else f"{made} of {len(bodies)} Jobs"

    wait_for(missing, timeout=300, what="the operators to create the warm-up Jobs")
    delete_jobs(api, namespace)


@dataclass
class Phase:
    replicas: int
    count: int
    sent_seconds: float  # first create sent -> every create answered
    jobs_seconds: float  # first create sent -> every Job seen
    pods_seconds: float  # first create sent -> every Job's pod seen
    requests: Requests
    create_to_job: list[float]  # per object: create request sent -> its Job seen by the watch
    jobs_cpu: dict[str, float]  # host CPU seconds by kind, first create -> every Job seen
    jobs_operator_cpu: dict[str, float] | None  # per pod, host /proc, the same span
    operator_cpu: dict[str, float] | None  # per pod, host /proc, the whole phase
    operator_cpu_metrics: dict[str, float] | None  # per pod, process_cpu_seconds_total
    operator_requests: dict[str, Requests]  # per pod, reportjobs_api_requests_total deltas
    shard_jobs: Counter[int | None]  # ReportJobs of the phase per shard

    @property
    def jobs_per_second(self) -> float:
        return self.count / self.jobs_seconds

    @property
    def requests_per_job(self) -> float:
        return sum(self.requests.values()) / self.count

    @property
    def cpu_source(self) -> str:
        return "host /proc" if self.operator_cpu is not None else "process_cpu_seconds_total"

    @property
    def operator_cpu_ms_per_job(self) -> float | None:
        cpu = self.operator_cpu if self.operator_cpu is not None else self.operator_cpu_metrics
        return None if cpu is None else sum(cpu.values()) * 1000 / self.count


def measure(
    api: client.ApiClient,
    args: argparse.Namespace,
    namespace: str,
    replicas: int,
    bodies: list[dict[str, Any]],
    pods: list[str],
) -> Phase:
    """Create `bodies` at the concurrency; wait for every Job and its pod; count the requests and
    the CPU (operator_cost.measure, with CPU readings at the start, at the last Job and the end)."""
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    names = [body["metadata"]["name"] for body in bodies]
    creates = [create_reportjob_body(api, namespace, body) for body in bodies]
    jobs = Arrivals(batch.list_namespaced_job, namespace, OPERATOR_JOBS, "name", len(bodies))
    pod_arrivals = Arrivals(
        core.list_namespaced_pod, namespace, OPERATOR_JOBS, "job-name", len(bodies)
    )
    metrics_before = pod_metrics(api, namespace, pods)
    before = request_counts(api)
    jobs.start()
    pod_arrivals.start()
    time.sleep(0.5)  # the watches are open before the first create
    sent_at: dict[str, float] = {}

    def send(item: tuple[str, Callable[[], object]]) -> None:
        sent_at[item[0]] = time.monotonic()
        item[1]()

    cpu_start = cpu_reading(pods)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        list(pool.map(send, zip(names, creates, strict=True)))
    sent = time.monotonic()
    jobs_done = jobs.wait(timeout=600)
    cpu_jobs = cpu_reading(pods)
    pods_done = pod_arrivals.wait(timeout=900)
    time.sleep(args.settle)  # let the reactions to the last pods land before counting
    cpu_end = cpu_reading(pods)
    requests = delta(before, request_counts(api))
    metrics_after = pod_metrics(api, namespace, pods)
    own = {
        pod: delta(
            operator_requests(metrics_before.get(pod, {})), operator_requests(metrics_after[pod])
        )
        for pod in pods
    }
    return Phase(
        replicas=replicas,
        count=len(bodies),
        sent_seconds=sent - started,
        jobs_seconds=jobs_done - started,
        pods_seconds=pods_done - started,
        requests=requests,
        create_to_job=sorted(jobs.first_seen[name] - sent_at[name] for name in names),
        jobs_cpu=host_delta(cpu_start, cpu_jobs),
        jobs_operator_cpu=pods_delta(cpu_start, cpu_jobs),
        operator_cpu=pods_delta(cpu_start, cpu_end),
        operator_cpu_metrics=metrics_cpu(metrics_before, metrics_after),
        operator_requests=own,
        shard_jobs=Counter(shard_of(body, args.shards) for body in bodies),
    )


def idle(
    api: client.ApiClient, namespace: str, pods: list[str], seconds: float
) -> tuple[float, float | None]:
    """The background over `seconds` of quiet: API requests/s and the operators' CPU ms/s."""
    before, cpu_before = request_counts(api), cpu_reading(pods)
    metrics_before = pod_metrics(api, namespace, pods)
    time.sleep(seconds)  # the background's own requests (lease renewals), for reference
    requests = delta(before, request_counts(api))
    cpu = pods_delta(cpu_before, cpu_reading(pods)) or metrics_cpu(
        metrics_before, pod_metrics(api, namespace, pods)
    )
    ms = None if cpu is None else sum(cpu.values()) * 1000 / seconds
    return sum(requests.values()) / seconds, ms


# --- part 1: replicas side by side -------------------------------------------------------------


def what_binds(phase: Phase, concurrency: int) -> str:
    """A reading of the CPU while the Jobs were being made (a heuristic, said as one)."""
    seconds = phase.jobs_seconds
    cores = os.cpu_count() or 1
    busy = phase.jobs_cpu.get("machine", 0.0) / (seconds * cores)
    kinds = {k: v for k, v in phase.jobs_cpu.items() if k != "machine"}
    top = sorted(kinds.items(), key=lambda kv: -kv[1])[:3]
    shares = ", ".join(f"{k} {v / seconds:.2f}" for k, v in top)
    tail = phase.jobs_seconds - phase.sent_seconds
    own = phase.jobs_operator_cpu or {}
    busiest = max(own.items(), key=lambda kv: kv[1], default=None)
    if busy >= SATURATED:
        verdict = f"the machine's CPU ({busy:.0%} of {cores} cores busy; most: {top[0][0]})"
    elif tail < max(0.5, 0.05 * phase.jobs_seconds):
        verdict = (
            f"the creates (every Job {tail:.2f} s after the last create was answered: the client "
            f"at concurrency {concurrency} and the API server's create path set the pace)"
        )
    elif busiest and busiest[1] / seconds >= SATURATED:
        verdict = (
            f"one operator's core ({busiest[0]} used {busiest[1] / seconds:.2f} cores: one "
            "Python process, one event loop)"
        )
    else:
        verdict = f"no CPU saturated ({busy:.0%} of {cores} cores busy): latency, not CPU"
    if not any(v for k, v in kinds.items() if k != "client"):
        shares += " (no process of the test bed is visible on this machine)"
    return f"{verdict}; cores used by the busiest: {shares}"


def run_replicas(
    api: client.ApiClient, args: argparse.Namespace, namespace: str, run: str, replicas: int
) -> dict[str, Any]:
    print(f"\n--- operator.replicas={replicas} ---", flush=True)
    helmctl(
        "deploy", kubeconfig=args.kubeconfig, namespace=namespace,
        values=scaling_values(args, replicas),
    )  # fmt: skip
    settled = settle(api, args, namespace, replicas)
    warm_up(api, args, namespace, f"{run}-r{replicas}")
    state = read_shards(api, namespace, args.shards)
    if state.over_share(replicas) is not None:  # the warm-up took long enough for a change
        settled += settle(api, args, namespace, replicas)
        state = read_shards(api, namespace, args.shards)
    pods = state.live
    background, background_cpu = idle(api, namespace, pods, args.idle)
    restarts_before = restarts(api, namespace)
    bodies = [
        reportjob_body(f"bench-{run}-r{replicas}-{i}", args.shards) for i in range(args.count)
    ]
    phase = measure(api, args, namespace, replicas, bodies, pods)
    after = read_shards(api, namespace, args.shards)
    server_lags = lags(api, namespace)
    restarted = {
        pod: n - restarts_before.get(pod, 0)
        for pod, n in restarts(api, namespace).items()
        if n != restarts_before.get(pod, 0)
    }
    binds = what_binds(phase, args.concurrency)
    delete_jobs(api, namespace)  # every ReportJob, Job and pod gone before the next R
    holders = state.held()
    expected = Counter(holders.get(n, "?") for n in phase.shard_jobs.elements() if n is not None)
    created = {pod: phase.operator_requests[pod][("create", "jobs")] for pod in pods}
    p50, p99 = statistics.median(phase.create_to_job), percentile(phase.create_to_job, 0.99)
    figures = {
        "replicas": replicas,
        "shards_per_pod": state.per_pod(),
        "shards_per_pod_after": after.per_pod(),
        "seconds_to_settle": settled,
        "jobs_per_second": phase.jobs_per_second,
        "seconds_to_send_every_create": phase.sent_seconds,
        "seconds_to_every_job": phase.jobs_seconds,
        "seconds_to_every_pod": phase.pods_seconds,
        "create_to_job_seconds": [p50, p99],
        "cr_to_job_lag_server_seconds": [
            statistics.median(server_lags),
            percentile(server_lags, 0.99),
        ],
        "requests_per_job": phase.requests_per_job,
        "lease_requests_per_job": sum(
            v for (_verb, resource), v in phase.requests.items() if resource == "leases"
        )
        / phase.count,
        "operator_cpu_ms_per_job": phase.operator_cpu_ms_per_job,
        "operator_cpu_source": phase.cpu_source,
        "operator_cpu_seconds": phase.operator_cpu,
        "operator_cpu_seconds_metrics": phase.operator_cpu_metrics,
        "jobs_created_by_pod": created,
        "jobs_expected_by_pod": dict(expected),
        "host_cpu_seconds_until_every_job": phase.jobs_cpu,
        "operator_cpu_seconds_until_every_job": phase.jobs_operator_cpu,
        "machine_cores": os.cpu_count(),
        "idle_requests_per_second": background,
        "idle_operator_cpu_ms_per_second": background_cpu,
        "restarts_during_phase": restarted,
        "binds": binds,
    }
    cpu = phase.operator_cpu_ms_per_job
    print(
        f"  {phase.jobs_per_second:.2f} Jobs/s, lag p50/p99 "
        f"{figures['cr_to_job_lag_server_seconds']}, operator CPU "
        f"{'-' if cpu is None else f'{cpu:.2f}'} ms/job ({phase.cpu_source}), "
        f"{phase.requests_per_job:.2f} API requests/job; Jobs made per pod {created} "
        f"(by the shards' holders: {dict(expected)})",
        flush=True,
    )
    if restarted:
        print(f"  (operator containers restarted during the phase: {restarted})")
    return figures


# --- part 2: rebalancing -----------------------------------------------------------------------


def rebalances(api: client.ApiClient, namespace: str, pods: list[str]) -> dict[str, dict[str, int]]:
    """reportjobs_operator_rebalances_total by change, per pod."""
    return {
        pod: {
            change: int(metric(values, "reportjobs_operator_rebalances_total", change=change))
            for change in ("acquired", "released", "lost")
        }
        for pod, values in pod_metrics(api, namespace, pods).items()
    }


def rebalance_delta(
    before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    return {
        pod: {c: n - before.get(pod, {}).get(c, 0) for c, n in changes.items()}
        for pod, changes in after.items()
    }


def poll_until(
    probe: Callable[[], str | None], *, timeout: float, what: str, every: float, started: float
) -> float | None:
    """Seconds from `started` until `probe` answers None; None (said) when it never did."""
    try:
        wait_for(probe, timeout=timeout, what=what, every=every)
    except TimeoutError as error:
        print(f"  ({error})", flush=True)
        return None
    return time.monotonic() - started


def operator_deployment(api: client.ApiClient, namespace: str) -> str:
    found: list[Any] = (
        client.AppsV1Api(api)
        .list_namespaced_deployment(namespace, label_selector=OPERATOR_PODS)
        .items
    )
    return str(found[0].metadata.name)


def scale_up(api: client.ApiClient, args: argparse.Namespace, namespace: str) -> dict[str, Any]:
    """2 -> 3 replicas: the times until the new pod runs, until no pod is over ceil(K/3), until
    the spread is fair, and until every pod reports its shards synced."""
    count, pods = args.shards, 3
    old = set(read_shards(api, namespace, count).live)
    counters = rebalances(api, namespace, sorted(old))
    marks: dict[str, float] = {}

    def probe(check: Callable[[Shards], str | None]) -> Callable[[], str | None]:
        def answer() -> str | None:
            state = read_shards(api, namespace, count)
            if "new_pod_running" not in marks and set(state.live) - old:
                marks["new_pod_running"] = time.monotonic() - started
            if "within_ceil" not in marks and state.over_share(pods) is None:
                marks["within_ceil"] = time.monotonic() - started
            if "fair" not in marks and state.unfair(pods) is None:
                marks["fair"] = time.monotonic() - started
            return check(state)

        return answer

    timeout, every = args.rebalance_timeout, args.poll
    started = time.monotonic()
    client.AppsV1Api(api).patch_namespaced_deployment_scale(
        operator_deployment(api, namespace), namespace, {"spec": {"replicas": pods}}
    )
    within = poll_until(
        probe(lambda s: s.over_share(pods)), timeout=timeout, every=every, started=started,
        what=f"3 pods holding the {count} shards, none over ceil(K/3)",
    )  # fmt: skip
    synced = poll_until(
        probe(lambda s: s.over_share(pods) or not_synced(api, namespace, s)),
        timeout=timeout if within is not None else 0, every=every, started=started,
        what="every pod's shards synced",
    )  # fmt: skip
    poll_until(  # a spread settled within ceil(K/3) but not fair stays so: not for long
        probe(lambda s: None if "fair" in marks else s.unfair(pods)),
        timeout=min(timeout, FAIR_WAIT_LEASES * args.lease_duration) if within is not None else 0,
        every=every, started=started, what="the fair spread (floor(K/3) to ceil(K/3) each)",
    )  # fmt: skip
    state = read_shards(api, namespace, count)
    return {
        "seconds_to_fair": marks.get("fair"),
        "seconds_new_pod_running": marks.get("new_pod_running"),
        "seconds_to_within_ceil": marks.get("within_ceil", within),
        "seconds_to_synced": synced,
        "shards_per_pod": state.per_pod(),
        "rebalances": rebalance_delta(counters, rebalances(api, namespace, state.live)),
    }


def kill_one(api: client.ApiClient, args: argparse.Namespace, namespace: str) -> dict[str, Any]:
    """Force-delete the pod holding the most shards: the time until all K are held by live pods
    again, each of its shards' takeover, and when its processes left this machine."""
    count, every, timeout = args.shards, args.poll, args.rebalance_timeout
    state = read_shards(api, namespace, count)
    spread = state.per_pod()
    victim = max(sorted(spread), key=lambda pod: spread[pod])
    victim_shards = state.shards_of(victim)
    survivors = set(state.live) - {victim}
    pids = pod_pids([victim])[victim]
    counters = rebalances(api, namespace, sorted(survivors))
    takeover: dict[int, float] = {}
    taken_by: dict[int, str] = {}
    seen_released: set[int] = set()
    marks: dict[str, float] = {}

    def probe(check: Callable[[Shards], str | None]) -> Callable[[], str | None]:
        def answer() -> str | None:
            now = time.monotonic() - started
            if "gone" not in marks and pids and not any(Path(f"/proc/{p}").exists() for p in pids):
                marks["gone"] = now
            seen = read_shards(api, namespace, count)
            held = seen.held()
            for shard in victim_shards:
                if seen.holder.get(shard) == "":
                    seen_released.add(shard)
                if shard not in takeover and shard in held:
                    takeover[shard] = now
                    taken_by[shard] = "survivor" if held[shard] in survivors else "replacement"
            return check(seen)

        return answer

    print(f"  force-deleting {victim} (it holds shards {victim_shards})", flush=True)
    started = time.monotonic()
    client.CoreV1Api(api).delete_namespaced_pod(
        victim, namespace, grace_period_seconds=0,
        body=client.V1DeleteOptions(grace_period_seconds=0),
    )  # fmt: skip
    all_held = poll_until(
        probe(lambda s: s.missing()), timeout=timeout, every=every, started=started,
        what=f"all {count} shards held by live pods",
    )  # fmt: skip
    held_then = read_shards(api, namespace, count).per_pod()
    within = poll_until(
        probe(lambda s: s.over_share(3)), timeout=timeout, every=every, started=started,
        what="3 live pods again, none over ceil(K/3)",
    )  # fmt: skip
    synced = poll_until(
        probe(lambda s: s.over_share(3) or not_synced(api, namespace, s)),
        timeout=timeout if within is not None else 0, every=every, started=started,
        what="every pod's shards synced",
    )  # fmt: skip
    if "gone" not in marks and pids:
        poll_until(
            probe(lambda s: None if "gone" in marks else "still running"),
            timeout=timeout, every=every, started=started, what="the deleted pod's processes",
        )  # fmt: skip
    state = read_shards(api, namespace, count)
    return {
        "pod": victim,
        "shards_it_held": victim_shards,
        "seconds_to_all_held": all_held,
        "shards_per_pod_when_all_held": held_then,
        "takeover_seconds": {str(n): takeover.get(n) for n in victim_shards},
        "taken_by": dict(Counter(taken_by.values())),
        "released_by_it": len(seen_released),
        "seconds_process_gone": marks.get("gone"),
        "seconds_to_within_ceil_again": within,
        "seconds_to_synced": synced,
        "shards_per_pod": state.per_pod(),
        "rebalances": rebalance_delta(counters, rebalances(api, namespace, state.live)),
    }


def rebalance(api: client.ApiClient, args: argparse.Namespace, namespace: str) -> dict[str, Any]:
    print("\n--- rebalance: 2 -> 3 replicas, then one force-deleted ---", flush=True)
    helmctl(
        "deploy", kubeconfig=args.kubeconfig, namespace=namespace, values=scaling_values(args, 2)
    )
    settle(api, args, namespace, 2)
    up = scale_up(api, args, namespace)
    print(f"  scaled to 3: fair after {seconds(up['seconds_to_fair'])} s", flush=True)
    durations = sorted(read_shards(api, namespace, args.shards).durations)
    down = kill_one(api, args, namespace)
    print(f"  all shards held again after {seconds(down['seconds_to_all_held'])} s", flush=True)
    return {
        "lease_duration_seconds": args.lease_duration,
        "lease_durations_seen": durations,
        "poll_seconds": args.poll,
        "scale_up": up,
        "pod_kill": down,
    }


# --- the run -----------------------------------------------------------------------------------


def run_bench(
    api: client.ApiClient, args: argparse.Namespace, namespace: str, run: str
) -> dict[str, Any]:
    runs = [run_replicas(api, args, namespace, run, replicas) for replicas in args.replicas]
    moved = None if args.no_rebalance else rebalance(api, args, namespace)
    return report(args, runs, moved)


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def report(
    args: argparse.Namespace, runs: list[dict[str, Any]], moved: dict[str, Any] | None
) -> dict[str, Any]:
    base = next((r for r in runs if r["replicas"] == 1), runs[0])
    for row in runs:
        row["ratio_to_r1"] = row["jobs_per_second"] / base["jobs_per_second"]
    print(f"\nN={args.count} concurrency={args.concurrency} shards={args.shards} "
          f"lease {args.lease_duration} s settle={args.settle:g} s")  # fmt: skip
    print(f"\n{'R':>2} {'shards/pod':>12} {'Jobs/s':>8} {'x R=1':>6} {'lag p50/p99':>12} "
          f"{'create->Job p50/p99':>20} {'op CPU ms/job':>14} {'API req/job':>12}")  # fmt: skip
    for f in runs:
        spread = "/".join(str(n) for n in sorted(f["shards_per_pod"].values(), reverse=True))
        lag, seen = f["cr_to_job_lag_server_seconds"], f["create_to_job_seconds"]
        cpu = f["operator_cpu_ms_per_job"]
        print(f"{f['replicas']:>2} {spread:>12} {f['jobs_per_second']:>8.2f} "
              f"{f['ratio_to_r1']:>6.2f} {f'{lag[0]:g} / {lag[1]:g}':>12} "
              f"{f'{seen[0]:.2f} / {seen[1]:.2f}':>20} "
              f"{'-' if cpu is None else f'{cpu:.2f}':>14} "
              f"{f['requests_per_job']:>12.2f}")  # fmt: skip
    print("  (lag: ReportJob creationTimestamp -> its Job's, s, server; create->Job: the create "
          "sent -> the Job seen by the client's watch, s;\n   op CPU: the operator pods' own, "
          "summed over the replicas)")  # fmt: skip
    for f in runs:
        idle_cpu = f["idle_operator_cpu_ms_per_second"]
        print(f"R={f['replicas']}: Jobs made per pod {f['jobs_created_by_pod']}; "
              f"CPU source {f['operator_cpu_source']}; lease requests/job "
              f"{f['lease_requests_per_job']:.2f}; idle {f['idle_requests_per_second']:.1f} "
              f"requests/s, operators {'-' if idle_cpu is None else f'{idle_cpu:.1f}'} ms CPU/s "
              f"(not subtracted)")  # fmt: skip
        print(f"     binds: {f['binds']}")
    figures: dict[str, Any] = {
        "count": args.count,
        "concurrency": args.concurrency,
        "shards": args.shards,
        "lease_duration_seconds": args.lease_duration,
        "runs": runs,
        "rebalance": moved,
    }
    if moved is not None:
        up, down = moved["scale_up"], moved["pod_kill"]
        seen, poll = moved["lease_durations_seen"], moved["poll_seconds"]
        print(f"\nrebalance (lease duration {moved['lease_duration_seconds']} s, Leases say "
              f"{seen}; polled every {poll:g} s):")  # fmt: skip
        print(f"  2 -> 3 replicas: fair spread after {seconds(up['seconds_to_fair'])} s (new pod "
              f"running at {seconds(up['seconds_new_pod_running'])} s, none over ceil(K/3) at "
              f"{seconds(up['seconds_to_within_ceil'])} s, all synced at "
              f"{seconds(up['seconds_to_synced'])} s); shards per pod "
              f"{up['shards_per_pod']}")  # fmt: skip
        takeovers = [t for t in down["takeover_seconds"].values() if t is not None]
        print(f"  one pod force-deleted ({len(down['shards_it_held'])} shards): all {args.shards} "
              f"held by live pods after {seconds(down['seconds_to_all_held'])} s "
              f"(its shards taken over at {seconds(min(takeovers, default=None))} to "
              f"{seconds(max(takeovers, default=None))} s, by {down['taken_by']}; "
              f"{down['released_by_it']} seen released by it; its processes gone at "
              f"{seconds(down['seconds_process_gone'])} s); back within ceil(K/3) on 3 pods "
              f"at {seconds(down['seconds_to_within_ceil_again'])} s, synced at "
              f"{seconds(down['seconds_to_synced'])} s")  # fmt: skip
        print(f"  rebalances (acquired/released/lost) on scale-up: {up['rebalances']}")
        print(f"  rebalances after the deletion: {down['rebalances']}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kubeconfig", default=str(REPO_ROOT / ".cluster" / "kubeconfig"))
    parser.add_argument("--image", default=None, help="default: the content of .cluster/image")
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--replicas", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 3]
    )
    parser.add_argument("--shards", type=int, default=16, help="operator.shards (K)")
    parser.add_argument("--lease-duration", type=int, default=15, help="leaseDurationSeconds")
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--poll", type=float, default=0.2, help="seconds between Lease reads")
    parser.add_argument("--settle-timeout", type=float, default=300.0)
    parser.add_argument("--rebalance-timeout", type=float, default=300.0)
    parser.add_argument("--no-rebalance", action="store_true", help="skip part 2")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    run_cordoned(parser.parse_args(), name="operator-scaling", run_bench=run_bench)


if __name__ == "__main__":
    main()
