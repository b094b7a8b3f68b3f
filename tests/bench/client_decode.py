#!/usr/bin/env python3
"""Benchmark: what the generated-model client's decoding costs compared with raw JSON, for the
watch events the operator decodes (batch/v1 Jobs and v1 Pods; ReportJobs are custom objects,
which the generated client returns as plain dicts anyway, so for them raw is all there is).

Per object, best of `--repeat` runs of `--number` calls each, in microseconds (time.perf_counter):
  raw     json.loads of one watch event line {"type": "MODIFIED", "object": ...};
  model   json.loads, then ApiClient's deserializer into V1Job / V1Pod;
  model+s model, then ApiClient().sanitize_for_serialization back to a dict (what code built on
          the generated client does to get dicts).
Then the memory of holding 1,000 decoded objects each way (tracemalloc, KiB per object): the dicts
json.loads returns vs the model objects. The bodies are built below, as the API server returns them.
No cluster is used.

Run: .venv/bin/python tests/bench/client_decode.py [--repeat 5] [--number 2000] [--json FILE]
     [--client kubernetes|kubernetes_asyncio]  (kubernetes_asyncio, which the operator used
     through kopf before, is not a dependency: install it in a venv of its own to compare)

It prints numbers and never fails on speed (it stops only if the model decoding is wrong).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import platform
import time
import timeit
import tracemalloc
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

T0, T1 = "2025-05-01T10:00:00Z", "2025-05-01T10:00:42Z"
NAME, UID = "rj-7f3a9c2e41-x2k9q", "3f1c8a52-9b7e-4c1d-a0e2-5d6f7a8b9c01"
LABELS = {"app.kubernetes.io/managed-by": "reportjobs-operator", "reportjobs.io/reportjob": NAME}


def metadata(*, name: str, owner_kind: str, owner_api: str, manager: str) -> dict[str, Any]:
    field: dict[str, Any] = {"f:metadata": {"f:labels": {".": {}, "f:reportjobs.io/reportjob": {}}}}
    return {
        "name": name, "namespace": "reports", "uid": UID, "resourceVersion": "184467",
        "generation": 1, "creationTimestamp": T0, "labels": dict(LABELS),
        "annotations": {"reportjobs.io/accepted-at": T0, "reportjobs.io/window": "300"},
        "ownerReferences": [{"apiVersion": owner_api, "kind": owner_kind, "name": NAME,
                             "uid": UID, "controller": True, "blockOwnerDeletion": True}],
        "managedFields": [
            {"manager": manager, "operation": "Update", "apiVersion": "v1", "time": T0,
             "fieldsType": "FieldsV1", "fieldsV1": field},
            {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
             "time": T1, "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:phase": {}}},
             "subresource": "status"},
        ],
    }  # fmt: skip


def container() -> dict[str, Any]:
    return {
        "name": "worker", "image": "ghcr.io/example/reportjobs-worker:0.1.0",
        "command": ["reportjobs-worker"], "args": ["--object-id", "obj-123", "--timeout", "60"],
        "env": [{"name": "OBJECT_ID", "value": "obj-123"}, {"name": "POD_NAME",
                "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
        "resources": {"limits": {"cpu": "500m", "memory": "256Mi"},
                      "requests": {"cpu": "100m", "memory": "128Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
        "volumeMounts": [{"name": "kube-api-access-x7k2p", "readOnly": True,
                          "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
    }  # fmt: skip


def condition(kind: str, *, at: str = T1) -> dict[str, Any]:
    return {"type": kind, "status": "True", "lastTransitionTime": at, "reason": kind, "message": ""}


def job_body() -> dict[str, Any]:
    pod_spec = {"containers": [container()], "restartPolicy": "Never", "dnsPolicy": "ClusterFirst",
                "terminationGracePeriodSeconds": 30, "schedulerName": "default-scheduler",
                "serviceAccountName": "reportjobs-worker", "securityContext": {}}  # fmt: skip
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": metadata(name=NAME, owner_kind="ReportJob", owner_api="reportjobs.io/v1",
                             manager="reportjobs-operator"),
        "spec": {"parallelism": 1, "completions": 1, "backoffLimit": 0,
                 "activeDeadlineSeconds": 60, "ttlSecondsAfterFinished": 300,
                 "completionMode": "NonIndexed", "suspend": False, "manualSelector": False,
                 "podReplacementPolicy": "TerminatingOrFailed",
                 "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": UID}},
                 "template": {"metadata": {"labels": dict(LABELS)}, "spec": pod_spec}},
        "status": {"conditions": [condition("SuccessCriteriaMet"), condition("Complete")],
                   "startTime": T0, "completionTime": T1, "succeeded": 1, "ready": 0,
                   "terminating": 0, "uncountedTerminatedPods": {}},
    }  # fmt: skip


def pod_body() -> dict[str, Any]:
    token = {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    ca = {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}
    ns = {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
        "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}  # fmt: skip
    running = {"running": {"startedAt": T0}}
    done = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": T0,
                           "finishedAt": T1, "containerID": "containerd://9a8b7c"}}  # fmt: skip
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": metadata(name=f"{NAME}-abcde", owner_kind="Job", owner_api="batch/v1",
                             manager="kube-controller-manager"),
        "spec": {"containers": [container()], "restartPolicy": "Never", "nodeName": "worker-1",
                 "serviceAccountName": "reportjobs-worker", "priority": 0,
                 "volumes": [{"name": "kube-api-access-x7k2p", "projected": {
                     "defaultMode": 420, "sources": [token, ca, ns]}}],
                 "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                  "effect": "NoExecute", "tolerationSeconds": 300}]},
        "status": {"phase": "Running", "hostIP": "172.18.0.3", "podIP": "10.244.1.17",
                   "qosClass": "Burstable", "startTime": T0,
                   "conditions": [condition(k, at=T0) for k in
                                  ("PodReadyToStartContainers", "Initialized", "Ready",
                                   "ContainersReady", "PodScheduled")],
                   "containerStatuses": [{"name": "worker", "ready": True, "restartCount": 0,
                                          "image": "ghcr.io/example/reportjobs-worker:0.1.0",
                                          "imageID": "ghcr.io/example/w@sha256:0f1e",
                                          "started": True, "state": running, "lastState": done}]},
    }  # fmt: skip


def reportjob_body() -> dict[str, Any]:
    meta = metadata(name=NAME, owner_kind="-", owner_api="-", manager="reportjobs-gateway")
    del meta["ownerReferences"]
    spec = {"objectId": "obj-123", "timeoutSeconds": 60, "windowSeconds": 300, "acceptedAt": T0}
    status = {"phase": "Succeeded", "jobName": NAME, "conditions": [condition("Complete")]}
    return {"apiVersion": "reportjobs.io/v1", "kind": "ReportJob", "metadata": meta,
            "spec": spec, "status": status}  # fmt: skip


def differences(a: Any, b: Any, *, path: str = "") -> list[str]:
    """Where the round-tripped `b` differs from the original `a`."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(a.keys() | b.keys())
        return [p for k in keys for p in differences(a.get(k), b.get(k), path=f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [p for i, x in enumerate(a) for p in differences(x, b[i], path=f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} -> {b!r}"]


def best_us(fn: Callable[[], object], *, number: int, repeat: int) -> float:
    """Best of `repeat` runs of `number` calls, in µs per call."""
    runs = timeit.repeat(fn, timer=time.perf_counter, number=number, repeat=repeat)
    return min(runs) / number * 1e6


def kib_each(make: Callable[[], object], *, count: int) -> float:
    """Memory retained per object while `count` results of `make` are held."""
    gc.collect()
    tracemalloc.start()
    held = [make() for _ in range(count)]
    gc.collect()
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del held
    return size / count / 1024


def measure(kind: str, body: dict[str, Any], klass: type | None, *, api: Any,
            number: int, repeat: int, held: int) -> dict[str, Any]:  # fmt: skip
    line = json.dumps({"type": "MODIFIED", "object": body})
    row: dict[str, Any] = {"object": kind, "event_bytes": len(line)}
    row["raw_us"] = best_us(lambda: json.loads(line), number=number, repeat=repeat)
    row["raw_kib"] = kib_each(lambda: json.loads(line)["object"], count=held)
    if klass is None:  # a custom object: the generated client returns the dict json.loads made
        return row
    decode = api._ApiClient__deserialize  # type: ignore[attr-defined]  # the public one takes text
    name = klass.__name__

    def model() -> Any:
        return decode(json.loads(line)["object"], name)

    obj = model()
    expected = body["status"]["conditions"][0]["type"]
    if obj.status.conditions[0].type != expected or type(obj) is not klass:
        raise SystemExit(f"{kind}: decoding gave {type(obj).__name__}, not the body")
    row["round_trip_differences"] = differences(body, api.sanitize_for_serialization(obj))
    row["model_us"] = best_us(model, number=number, repeat=repeat)
    row["model_sanitize_us"] = best_us(
        lambda: api.sanitize_for_serialization(model()), number=number, repeat=repeat
    )
    row["model_kib"] = kib_each(model, count=held)
    row["model_x"] = row["model_us"] / row["raw_us"]
    row["model_sanitize_x"] = row["model_sanitize_us"] / row["raw_us"]
    return row


CLIENTS = ["kubernetes", "kubernetes_asyncio"]


async def _api_client(generated: Any) -> Any:
    """kubernetes_asyncio's ApiClient makes its aiohttp connector at once: it needs a loop."""
    return generated.ApiClient()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--held", type=int, default=1000, help="objects held for the memory figure")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--client", default="kubernetes", choices=CLIENTS,
                        help="the generated client whose models decode")  # fmt: skip
    args = parser.parse_args()
    generated = importlib.import_module(f"{args.client}.client")
    api = asyncio.run(_api_client(generated))
    objects = (("Job", job_body(), generated.V1Job), ("Pod", pod_body(), generated.V1Pod),
               ("ReportJob", reportjob_body(), None))  # fmt: skip
    rows = [measure(*o, api=api, number=args.number, repeat=args.repeat, held=args.held)
            for o in objects]  # fmt: skip
    env = {args.client: version(args.client),
           "python": f"{platform.python_implementation()} {platform.python_version()}"}  # fmt: skip
    print(", ".join(f"{k} {v}" for k, v in env.items()), f"| best of {args.repeat} x {args.number}")
    head = ("object", "bytes", "raw µs", "model µs", "model+s µs", "model/raw", "(m+s)/raw",
            "raw KiB", "model KiB")  # fmt: skip
    print("".join(f"{h:>11}" for h in head))
    for r in rows:
        cells = [r["object"], r["event_bytes"], f"{r['raw_us']:.1f}"]
        cells += [f"{r[k]:.1f}" if k in r else "(dict)" for k in ("model_us", "model_sanitize_us")]
        cells += [f"{r[k]:.1f}x" if k in r else "-" for k in ("model_x", "model_sanitize_x")]
        cells += [f"{r['raw_kib']:.2f}", f"{r['model_kib']:.2f}" if "model_kib" in r else "(dict)"]
        print("".join(f"{c:>11}" for c in cells))
    print(f"KiB: memory retained per object while {args.held} are held (tracemalloc)")
    for r in rows:
        if diff := r.get("round_trip_differences"):
            print(f"{r['object']} round trip: {len(diff)} fields differ, e.g. {diff[0]}")
    if args.json:
        args.json.write_text(json.dumps({"env": env, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
