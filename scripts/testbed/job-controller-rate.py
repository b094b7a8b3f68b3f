#!/usr/bin/env python3
"""How fast the cluster's Job controller creates pods: the test bed's ceiling for any Job-making
operator. Prints numbers; asserts nothing.

In a scratch namespace, N plain batch/v1 Jobs are created at once (16 client threads) whose pods
select a node label no node has: they stay Pending, so nothing runs and no node is cordoned;
only the Job controller's pod creates (and the scheduler's failed attempts) load the cluster.
A watch opened before the first create timestamps each pod's ADDED event; the rate is
(N - 1) / (last pod seen - first pod seen). The namespace is deleted and waited for in any case.

usage: .venv/bin/python scripts/testbed/job-controller-rate.py [--kubeconfig .cluster/kubeconfig]
                                                               [--count 200]
"""

from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException


def job_body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "nodeSelector": {"reportjobs.example/no-such-node": "true"},
                    "terminationGracePeriodSeconds": 0,
                    "containers": [
                        {
                            "name": "pause",
                            "image": "registry.k8s.io/pause:3.6",
                            "imagePullPolicy": "Never",
                        }
                    ],
                }
            },
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", default=".cluster/kubeconfig")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()

    config.load_kube_config(config_file=args.kubeconfig)
    core, batch = client.CoreV1Api(), client.BatchV1Api()
    namespace = f"rj-jobrate-{int(time.time())}"
    core.create_namespace({"metadata": {"name": namespace}})
    seen: dict[str, float] = {}
    done = threading.Event()

    def watch_pods() -> None:
        stream = watch.Watch()
        for event in stream.stream(core.list_namespaced_pod, namespace, timeout_seconds=600):
            if event["type"] == "ADDED":
                seen.setdefault(event["object"].metadata.name, time.monotonic())
            if len(seen) >= args.count or done.is_set():
                stream.stop()

    try:
        watcher = threading.Thread(target=watch_pods, daemon=True)
        watcher.start()
        time.sleep(1)  # the watch is open before the first create
        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            list(
                pool.map(
                    lambda i: batch.create_namespaced_job(namespace, job_body(f"j{i:04d}")),
                    range(args.count),
                )
            )
        created = time.monotonic() - started
        deadline = time.monotonic() + args.timeout
        while len(seen) < args.count and time.monotonic() < deadline:
            time.sleep(0.2)
        done.set()
        times = sorted(seen.values())
        print(f"namespace {namespace}: {args.count} Jobs created in {created:.1f} s")
        if len(times) >= 2:
            span = times[-1] - times[0]
            print(
                f"pods seen: {len(times)}/{args.count}; first pod {times[0] - started:.1f} s "
                f"after the first create, last {times[-1] - started:.1f} s"
            )
            print(f"Job controller: {(len(times) - 1) / span:.1f} pods/s (first to last pod)")
    finally:
        done.set()
        core.delete_namespace(namespace)
        deleting = time.monotonic()
        deadline = deleting + 600
        while time.monotonic() < deadline:
            try:
                core.read_namespace(namespace)
            except ApiException as error:
                if error.status == 404:
                    print(f"namespace {namespace} deleted in {time.monotonic() - deleting:.1f} s")
                    break
                raise
            time.sleep(1)
        else:
            print(f"namespace {namespace} still there after 600 s")


if __name__ == "__main__":
    main()
