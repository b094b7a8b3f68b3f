#!/usr/bin/env python3
"""Benchmark: the operator's cost per job against the cluster's floor. Prints numbers; asserts
nothing about speed.

Path A (the operator): N ReportJobs are created straight through the API (bodies like the
gateway's), at a fixed concurrency, and the operator creates one batch Job for each. Path B (the
floor): the same client creates N batch Jobs directly, with the pod template of an operator's Job.
For each path: Jobs/s until every Job exists, and the API requests the phase caused, as raw deltas
of the API server's own `apiserver_request_total` (cluster-wide, nothing subtracted) from just
before the first create until every Job has its pod and `--settle` seconds have passed (the
Kubernetes 1.20 API server counts a GET of one custom object as LIST). For both paths the
lag from each create request being sent to its Job's ADDED event on the client's watch (create ->
Job seen, sub-second); for A also the lag from each ReportJob's creationTimestamp to its Job's
(server timestamps, whole seconds), the operator's own count of its API requests (deltas of its
`reportjobs_api_requests_total`, read from its /metrics through the API server's pod proxy) as a
cross-check of the API server's figure, and the operator pod's RSS.

Both nodes are cordoned first, so no worker pod ever runs (the Job controller still creates the
pods; they stay Pending). The chart is installed in a fresh namespace with a toleration for the
cordon, so the gateway and the operator do run. Whatever happens, the `finally` deletes what the
run created, waits until none of its pods exists, deletes the namespace and only then uncordons
the nodes that were schedulable before.

usage: operator_cost.py [--kubeconfig .cluster/kubeconfig] [--count 300] [--concurrency 8]
                        [--settle 5] [--image localhost/reportjobs:TAG] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from reportjobs_model import crd, labels
from reportjobs_model.reportjob import build_reportjob
from reportjobs_model.window import Claim

REPO_ROOT = Path(__file__).resolve().parents[2]
HELMCTL = REPO_ROOT / "scripts" / "helmctl.py"
RELEASE = "reportjobs"
DIRECT = "reportjobs-bench/direct"  # label of path B's Jobs and pods (unseen by the operator)
OPERATOR_JOBS = labels.REPORTJOB  # label of the operator's Jobs and their pods
UNSCHEDULABLE = {"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}
METRIC = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)")
HEALTH_PORT = 8080  # the operator's probes and /metrics
LABEL = re.compile(r'(\w+)="([^"]*)"')

Requests = Counter[tuple[str, str]]  # (verb, resource[/subresource]) -> requests


@dataclass
class Phase:
    name: str
    count: int
    sent_seconds: float  # first create sent -> every create answered
    jobs_seconds: float  # first create sent -> every Job seen
    pods_seconds: float  # first create sent -> every Job's pod seen
    requests: Requests
    create_to_job: list[float]  # per object: create request sent -> its Job seen by the watch
    operator_requests: Requests | None = None  # the operator's own counter (A only)

    @property
    def jobs_per_second(self) -> float:
        return self.count / self.jobs_seconds

    @property
    def requests_per_job(self) -> float:
        return sum(self.requests.values()) / self.count


# --- the cluster -------------------------------------------------------------------------------


def api_client(kubeconfig: str, pool: int) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    configuration.connection_pool_maxsize = pool
    return client.ApiClient(configuration)


def get_raw(api: client.ApiClient, path: str) -> str:
    """GET a path of the API server with the kubeconfig's credentials."""
    headers = {
        auth["key"]: auth["value"]
        for auth in api.configuration.auth_settings().values()
        if auth["in"] == "header" and auth["value"]
    }
    host = api.configuration.host.rstrip("/")
    response = api.rest_client.pool_manager.request(
        "GET", f"{host}{path}", headers=headers, timeout=30.0, retries=False
    )
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status}")
    return str(response.data.decode())


def request_counts(api: client.ApiClient) -> Requests:
    """apiserver_request_total summed by verb and resource (GET /metrics through the API)."""
    text = get_raw(api, "/metrics")
    counts: Requests = Counter()
    for line in text.splitlines():
        match = METRIC.match(line)
        if match:
            fields = dict(LABEL.findall(match["labels"]))
            resource = "/".join(f for f in (fields["resource"], fields["subresource"]) if f)
            counts[(fields["verb"], resource or "(non-resource)")] += int(float(match["value"]))
    return counts


def delta(before: Requests, after: Requests) -> Requests:
    return Counter({key: after[key] - before[key] for key in after if after[key] != before[key]})


def wait_until(probe: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(1)  # polling


def set_unschedulable(core: client.CoreV1Api, nodes: list[str], value: bool) -> None:
    for node in nodes:
        core.patch_node(node, {"spec": {"unschedulable": value}})


def cordon(core: client.CoreV1Api) -> list[str]:
    """Cordon the schedulable nodes; answer their names (to uncordon those, and only those)."""
    nodes = [n.metadata.name for n in core.list_node().items if not n.spec.unschedulable]
    set_unschedulable(core, nodes, True)
    print(f"cordoned {nodes}", flush=True)
    return nodes


def uncordon(core: client.CoreV1Api, nodes: list[str]) -> None:
    set_unschedulable(core, nodes, False)
    print(f"uncordoned {nodes}", flush=True)


# --- the release -------------------------------------------------------------------------------


def helmctl(action: str, *, kubeconfig: str, namespace: str, values: dict[str, Any]) -> None:
    command = [
        sys.executable, str(HELMCTL), action, "--kubeconfig", kubeconfig,
        "--release", RELEASE, "--namespace", namespace, "--timeout", "300",
    ]  # fmt: skip
    if action == "deploy":
        command += ["--values", json.dumps(values)]
    subprocess.run(command, check=True, timeout=400)


def release_values(image: str) -> dict[str, Any]:
    repository, tag = image.rsplit(":", 1)
    return {
        "image": {"repository": repository, "tag": tag},
        "service": {"type": "ClusterIP"},
        "gateway": {"replicas": 1},
        "operator": {"replicas": 1, "resyncSeconds": 300},
        "tolerations": [{**UNSCHEDULABLE, "effect": "NoSchedule"}],
    }


def operator_pod(core: client.CoreV1Api, namespace: str) -> client.V1Pod:
    pods = core.list_namespaced_pod(namespace, label_selector=f"{labels.COMPONENT}=operator").items
    return next(p for p in pods if p.metadata.deletion_timestamp is None)


def operator_get(core: client.CoreV1Api, namespace: str, path: str) -> str:
    """GET a path of the operator's health port through the API server's pod proxy."""
    pod = operator_pod(core, namespace).metadata.name
    proxy = f"/api/v1/namespaces/{namespace}/pods/{pod}:{HEALTH_PORT}/proxy{path}"
    return get_raw(core.api_client, proxy)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus text format -> {(name, labels): value}."""
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and not line.startswith("#"):
            found[(match["name"], frozenset(LABEL.findall(match["labels"] or "")))] = float(
                match["value"]
            )
    return found


def operator_metrics(core: client.CoreV1Api, namespace: str) -> dict[Any, float]:
    return samples(operator_get(core, namespace, "/metrics"))


def metric(values: dict[Any, float], name: str, **wanted: str) -> float:
    """The sum of a metric's samples whose labels include `wanted`."""
    return sum(
        value
        for (sample, sample_labels), value in values.items()
        if sample == name and set(wanted.items()) <= sample_labels
    )


def operator_requests(values: dict[Any, float]) -> Requests:
    """reportjobs_api_requests_total by (verb, resource), as the operator counted them."""
    counts: Requests = Counter()
    for (sample, sample_labels), value in values.items():
        if sample == "reportjobs_api_requests_total":
            fields = dict(sample_labels)
            counts[(fields["verb"], fields["resource"])] += int(value)
    return counts


# --- creating and watching ---------------------------------------------------------------------


def reportjob_body(object_id: str) -> dict[str, Any]:
    claim = Claim.new(object_id=object_id, now=time.time(), window_seconds=300, timeout_seconds=60)
    return dict(build_reportjob(object_id=object_id, claim=claim))


def direct_job_body(template: dict[str, Any], name: str, run: str) -> dict[str, Any]:
    """An operator's Job spec (pod template included) without its owner, selector or labels."""
    spec = {k: v for k, v in template["spec"].items() if k != "selector"}
    pod_metadata = {"labels": {DIRECT: run}}
    spec["template"] = {**spec["template"], "metadata": pod_metadata}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {DIRECT: run}},
        "spec": spec,
    }


class Arrivals(threading.Thread):
    """Watch Jobs or pods with a label until `count` distinct keys were seen; record when."""

    def __init__(
        self, list_call: Callable[..., Any], namespace: str, selector: str, key: str, count: int
    ) -> None:
        super().__init__(daemon=True)
        self.list_call, self.namespace, self.selector = list_call, namespace, selector
        self.key, self.count = key, count
        self.seen: set[str] = set()
        self.first_seen: dict[str, float] = {}  # key -> monotonic time of its first event
        self.done_at: float | None = None
        self.error: BaseException | None = None

    def _key(self, obj: Any) -> str:
        if self.key == "name":
            return str(obj.metadata.name)
        return str(obj.metadata.labels.get(self.key, obj.metadata.name))

    def run(self) -> None:
        try:
            version = ""
            while len(self.seen) < self.count:
                stream = watch.Watch()
                for event in stream.stream(
                    self.list_call,
                    self.namespace,
                    label_selector=self.selector,
                    resource_version=version,
                    timeout_seconds=300,
                ):
                    obj = event["object"]
                    version = obj.metadata.resource_version
                    key = self._key(obj)
                    self.seen.add(key)
                    self.first_seen.setdefault(key, time.monotonic())
                    if len(self.seen) >= self.count:
                        stream.stop()
            self.done_at = time.monotonic()
        except BaseException as error:  # noqa: BLE001 - reported by wait()
            self.error = error

    def wait(self, timeout: float) -> float:
        self.join(timeout)
        if self.error is not None or self.done_at is None:
            raise TimeoutError(f"saw {len(self.seen)}/{self.count} ({self.selector}): {self.error}")
        return self.done_at


def measure(
    api: client.ApiClient,
    *,
    name: str,
    namespace: str,
    selector: str,
    creates: dict[str, Callable[[], object]],
    concurrency: int,
    settle: float,
    operator_namespace: str | None = None,
) -> Phase:
    """Run `creates` (Job name -> create) at `concurrency`; wait for every Job and its pod; count
    the requests (and the operator's own count when `operator_namespace` is given)."""
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    jobs = Arrivals(batch.list_namespaced_job, namespace, selector, "name", len(creates))
    pods = Arrivals(core.list_namespaced_pod, namespace, selector, "job-name", len(creates))
    own_before = operator_metrics(core, operator_namespace) if operator_namespace else None
    before = request_counts(api)
    jobs.start()
    pods.start()
    time.sleep(0.5)  # the watches are open before the first create
    sent_at: dict[str, float] = {}

    def send(item: tuple[str, Callable[[], object]]) -> None:
        sent_at[item[0]] = time.monotonic()
        item[1]()

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(send, creates.items()))
    sent = time.monotonic()
    jobs_done = jobs.wait(timeout=600)
    pods_done = pods.wait(timeout=900)
    time.sleep(settle)  # let the reactions to the last pods land before counting
    requests = delta(before, request_counts(api))
    own = None
    if own_before is not None and operator_namespace is not None:
        own_after = operator_metrics(core, operator_namespace)
        own = delta(operator_requests(own_before), operator_requests(own_after))
    create_to_job = sorted(jobs.first_seen[key] - sent_at[key] for key in creates)
    return Phase(
        name, len(creates), sent - started, jobs_done - started, pods_done - started, requests,
        create_to_job, own,
    )  # fmt: skip


# --- the two paths -----------------------------------------------------------------------------


def create_reportjob(api: client.ApiClient, namespace: str, object_id: str) -> Callable[[], object]:
    custom = client.CustomObjectsApi(api)
    return lambda: custom.create_namespaced_custom_object(
        crd.GROUP, crd.VERSION, namespace, crd.PLURAL, reportjob_body(object_id)
    )


def create_reportjob_body(
    api: client.ApiClient, namespace: str, body: dict[str, Any]
) -> Callable[[], object]:
    custom = client.CustomObjectsApi(api)
    return lambda: custom.create_namespaced_custom_object(
        crd.GROUP, crd.VERSION, namespace, crd.PLURAL, body
    )


def create_job(api: client.ApiClient, namespace: str, body: dict[str, Any]) -> Callable[[], object]:
    batch = client.BatchV1Api(api)
    return lambda: batch.create_namespaced_job(namespace, body)


def timestamp(value: Any) -> float:
    return (
        value.timestamp()
        if isinstance(value, datetime)
        else datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    )


def lags(api: client.ApiClient, namespace: str) -> list[int]:
    """Seconds from each ReportJob's creationTimestamp to its Job's."""
    listing = client.CustomObjectsApi(api).list_namespaced_custom_object(
        crd.GROUP, crd.VERSION, namespace, crd.PLURAL
    )
    created = {
        rj["metadata"]["name"]: rj["metadata"]["creationTimestamp"] for rj in listing["items"]
    }
    jobs = client.BatchV1Api(api).list_namespaced_job(namespace, label_selector=OPERATOR_JOBS)
    return sorted(
        round(timestamp(job.metadata.creation_timestamp) - timestamp(created[job.metadata.name]))
        for job in jobs.items
    )


def rss_kib(core: client.CoreV1Api, namespace: str) -> dict[str, int]:
    """VmRSS of the operator pod's processes on this machine (by POD_NAME in their environment),
    else the kubelet's summary of its containers' rssBytes."""
    pod = operator_pod(core, namespace)
    wanted = f"POD_NAME={pod.metadata.name}".encode()
    found: dict[str, int] = {}
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and wanted in (proc / "environ").read_bytes().split(b"\0"):
                status = (proc / "status").read_text()
                found[f"pid {proc.name}"] = int(status.split("VmRSS:")[1].split()[0])
        except (OSError, IndexError):
            continue
    return found or kubelet_rss_kib(core, pod)


def kubelet_rss_kib(core: client.CoreV1Api, pod: client.V1Pod) -> dict[str, int]:
    node = pod.spec.node_name
    summary = json.loads(get_raw(core.api_client, f"/api/v1/nodes/{node}/proxy/stats/summary"))
    for entry in summary.get("pods", []):
        if entry["podRef"]["name"] == pod.metadata.name:
            return {
                f"container {c['name']}": int(c["memory"]["rssBytes"]) // 1024
                for c in entry.get("containers", [])
            }
    return {}


# --- cleanup -----------------------------------------------------------------------------------


def leftovers(api: client.ApiClient, namespace: str) -> int:
    """ReportJobs, Jobs and worker pods of the run still in the namespace."""
    custom, batch, core = (
        client.CustomObjectsApi(api),
        client.BatchV1Api(api),
        client.CoreV1Api(api),
    )
    count = len(
        custom.list_namespaced_custom_object(crd.GROUP, crd.VERSION, namespace, crd.PLURAL)["items"]
    )
    for selector in (OPERATOR_JOBS, DIRECT):
        count += len(batch.list_namespaced_job(namespace, label_selector=selector).items)
        count += len(core.list_namespaced_pod(namespace, label_selector=selector).items)
    return count


def delete_jobs(api: client.ApiClient, namespace: str, *, timeout: float = 900) -> None:
    """Delete the ReportJobs (their Jobs and pods follow by garbage collection) and the direct
    Jobs with their pods; wait until none is left. A collection delete of thousands may answer
    504 after the API server's request timeout while it goes on deleting: then it is asked again
    (what is gone is not deleted twice) until it answers."""

    def deleted() -> bool:
        try:
            client.CustomObjectsApi(api).delete_collection_namespaced_custom_object(
                crd.GROUP, crd.VERSION, namespace, crd.PLURAL
            )
            client.BatchV1Api(api).delete_collection_namespaced_job(
                namespace, label_selector=DIRECT, propagation_policy="Background"
            )
        except ApiException as error:
            if error.status not in (429, 500, 503, 504):
                raise
            print(f"  deleting: {error.status} {error.reason}, asking again")
            return False
        return True

    wait_until(deleted, timeout=timeout, what="the collection deletes to be answered")
    wait_until(lambda: leftovers(api, namespace) == 0, timeout=timeout, what="the jobs to go")


def namespace_exists(core: client.CoreV1Api, namespace: str) -> bool:
    return namespace in {n.metadata.name for n in core.list_namespace().items}


def clean_up(api: client.ApiClient, kubeconfig: str, namespace: str) -> None:
    """Every Job and pod of the run gone, then the release and the namespace."""
    if namespace_exists(client.CoreV1Api(api), namespace):
        try:
            delete_jobs(api, namespace)
        finally:
            delete_namespace(api, kubeconfig, namespace)


def delete_namespace(api: client.ApiClient, kubeconfig: str, namespace: str) -> None:
    core = client.CoreV1Api(api)
    try:
        helmctl("uninstall", kubeconfig=kubeconfig, namespace=namespace, values={})
    finally:
        try:
            core.delete_namespace(namespace)
        except ApiException as error:
            if error.status != 404:
                raise
        wait_until(
            lambda: not namespace_exists(core, namespace),
            timeout=600,
            what=f"namespace {namespace} to go",
        )


# --- the run -----------------------------------------------------------------------------------


def warm_up(api: client.ApiClient, namespace: str, run: str) -> None:
    """One ReportJob through the operator (it leads and has its watches open), then deleted."""
    create_reportjob(api, namespace, f"bench-{run}-warm-up")()
    batch = client.BatchV1Api(api)
    wait_until(
        lambda: bool(batch.list_namespaced_job(namespace, label_selector=OPERATOR_JOBS).items),
        timeout=300,
        what="the operator to create the warm-up Job",
    )
    delete_jobs(api, namespace)


def path_a(api: client.ApiClient, args: argparse.Namespace, namespace: str, run: str) -> Phase:
    creates = {}
    for i in range(args.count):
        body = reportjob_body(f"bench-{run}-{i}")
        creates[body["metadata"]["name"]] = create_reportjob_body(api, namespace, body)
    return measure(
        api, name="A operator", namespace=namespace, selector=OPERATOR_JOBS,
        creates=creates, concurrency=args.concurrency, settle=args.settle,
        operator_namespace=namespace,
    )  # fmt: skip


def path_b(
    api: client.ApiClient, args: argparse.Namespace, namespace: str, run: str, template: Any
) -> Phase:
    bodies = [direct_job_body(template, f"bench-{run}-direct-{i}", run) for i in range(args.count)]
    creates = {body["metadata"]["name"]: create_job(api, namespace, body) for body in bodies}
    return measure(
        api, name="B direct", namespace=namespace, selector=DIRECT,
        creates=creates, concurrency=args.concurrency, settle=args.settle,
    )  # fmt: skip


def idle(api: client.ApiClient, seconds: float) -> Requests:
    before = request_counts(api)
    time.sleep(seconds)  # the background's own requests, for reference
    return delta(before, request_counts(api))


def run_bench(
    api: client.ApiClient, args: argparse.Namespace, namespace: str, run: str
) -> dict[str, Any]:
    core = client.CoreV1Api(api)
    helmctl(
        "deploy", kubeconfig=args.kubeconfig, namespace=namespace, values=release_values(args.image)
    )
    warm_up(api, namespace, run)
    background = idle(api, args.idle)
    a = path_a(api, args, namespace, run)
    rss = rss_kib(core, namespace)
    a_lags = lags(api, namespace)
    template = api.sanitize_for_serialization(
        client.BatchV1Api(api).list_namespaced_job(namespace, label_selector=OPERATOR_JOBS).items[0]
    )
    delete_jobs(api, namespace)
    b = path_b(api, args, namespace, run, template)
    delete_jobs(api, namespace)
    return report(args, a, b, a_lags, rss, background)


# --- the report --------------------------------------------------------------------------------


def percentile(values: list[Any], fraction: float) -> Any:
    return values[min(len(values) - 1, int(len(values) * fraction))]


def report(
    args: argparse.Namespace,
    a: Phase,
    b: Phase,
    a_lags: list[int],
    rss: dict[str, int],
    background: Requests,
) -> dict[str, Any]:
    print(f"\nN={args.count} concurrency={args.concurrency} settle={args.settle:g} s")
    print(f"\n{'API requests (raw deltas)':<44} {'A operator':>10} {'B direct':>10}")
    for key in sorted(
        set(a.requests) | set(b.requests), key=lambda k: -a.requests[k] - b.requests[k]
    ):
        print(f"  {key[0]:<10} {key[1]:<31} {a.requests[key]:>10} {b.requests[key]:>10}")
    print(f"  {'total':<42} {sum(a.requests.values()):>10} {sum(b.requests.values()):>10}")
    rate = sum(background.values()) / args.idle
    print(f"  (idle cluster over {args.idle:g} s before A: {rate:.1f} requests/s, not subtracted)")
    print("  (a GET of one ReportJob counts as LIST reportjobs on Kubernetes 1.20)")
    own = a.operator_requests or Counter()
    own_total = sum(own.values())
    print("\nthe operator's own count during A (reportjobs_api_requests_total deltas):")
    for key, value in sorted(own.items(), key=lambda kv: -kv[1]):
        print(f"  {key[0]:<10} {key[1]:<31} {value:>10}")
    print(f"  {'total':<42} {own_total:>10}  = {own_total / a.count:.2f} per job")
    a_p50, a_p99 = statistics.median(a.create_to_job), percentile(a.create_to_job, 0.99)
    b_p50, b_p99 = statistics.median(b.create_to_job), percentile(b.create_to_job, 0.99)
    ratio = a.jobs_per_second / b.jobs_per_second
    print(f"\n{'':<34} {'A operator':>12} {'B direct':>12} {'A/B or A-B':>12}")
    print(f"{'Jobs/s':<34} {a.jobs_per_second:>12.2f} {b.jobs_per_second:>12.2f} {ratio:>12.2f}")
    print(f"{'s to send every create':<34} {a.sent_seconds:>12.1f} {b.sent_seconds:>12.1f}")
    print(f"{'s to every Job':<34} {a.jobs_seconds:>12.1f} {b.jobs_seconds:>12.1f}")
    print(f"{'s to every pod':<34} {a.pods_seconds:>12.1f} {b.pods_seconds:>12.1f}")
    print(f"{'create->Job seen p50 / p99 (s)':<34} {f'{a_p50:.2f} / {a_p99:.2f}':>12} "
          f"{f'{b_p50:.2f} / {b_p99:.2f}':>12}")  # fmt: skip
    print(f"{'API requests per job':<34} {a.requests_per_job:>12.2f} {b.requests_per_job:>12.2f} "
          f"{a.requests_per_job - b.requests_per_job:>12.2f}")  # fmt: skip
    print(f"{'  (the operator counted)':<34} {own_total / a.count:>12.2f}")
    p50, p99 = statistics.median(a_lags), percentile(a_lags, 0.99)
    print(f"{'CR->Job lag p50/p99 (s, server)':<34} {f'{p50:g} / {p99}':>12}")
    print(f"operator RSS at the end of A: {', '.join(f'{k}: {v} KiB' for k, v in rss.items())}")
    return {
        "count": args.count,
        "concurrency": args.concurrency,
        "jobs_per_second": {"a": a.jobs_per_second, "b": b.jobs_per_second, "ratio": ratio},
        "seconds_to_every_job": {"a": a.jobs_seconds, "b": b.jobs_seconds},
        "seconds_to_every_pod": {"a": a.pods_seconds, "b": b.pods_seconds},
        "create_to_job_seconds": {"a": [a_p50, a_p99], "b": [b_p50, b_p99]},
        "cr_to_job_lag_server_seconds": [p50, p99],
        "requests_per_job": {
            "a": a.requests_per_job,
            "b": b.requests_per_job,
            "a_minus_b": a.requests_per_job - b.requests_per_job,
            "operator_own": own_total / a.count,
        },
        "operator_rss_kib_end_of_a": rss,
    }


RunBench = Callable[[client.ApiClient, argparse.Namespace, str, str], dict[str, Any]]


def run_cordoned(args: argparse.Namespace, *, name: str, run_bench: RunBench) -> None:
    """What every operator benchmark's main does once its arguments are parsed: cordon both
    nodes, run in a fresh namespace `bench-<name>-<run>`, and always clean up (and wait for the
    pods to be gone) before uncordoning; then write the figures to --json."""
    if args.image is None:
        args.image = (Path(args.kubeconfig).parent / "image").read_text().strip()
    run = uuid.uuid4().hex[:6]
    namespace = f"bench-{name}-{run}"
    api = api_client(args.kubeconfig, pool=args.concurrency + 4)
    core = client.CoreV1Api(api)
    nodes = cordon(core)
    try:
        figures = run_bench(api, args, namespace, run)
    finally:
        started = time.monotonic()
        clean_up(api, args.kubeconfig, namespace)  # raises (and keeps the cordon) if it fails
        print(f"cleaned up in {time.monotonic() - started:.0f} s", flush=True)
        uncordon(core, nodes)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kubeconfig", default=str(REPO_ROOT / ".cluster" / "kubeconfig"))
    parser.add_argument("--image", default=None, help="default: the content of .cluster/image")
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    run_cordoned(parser.parse_args(), name="operator-cost", run_bench=run_bench)


if __name__ == "__main__":
    main()
