"""Every batch Job a namespace ever had, by a watch kept for a whole test.

The operator deletes a Job once its outcome is recorded, so a final listing cannot tell whether
a ReportJob ever had two Jobs: this records each Job's uid per name as the watch sees it. On any
error (etcd frozen, API server restarting) it lists again and watches from that listing."""

from __future__ import annotations

import threading
from collections import defaultdict

from kubernetes import watch
from kubernetes.client.rest import ApiException

from tests.e2e.support.kube import Cluster


class JobWatch:
    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.uids: dict[str, set[str]] = defaultdict(set)
        self.relists = 0  # listings after the first: moments a short-lived Job could be missed
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-watch", daemon=True)
        self._started = threading.Event()

    def __enter__(self) -> JobWatch:
        self._thread.start()
        if not self._started.wait(timeout=60):
            raise AssertionError("the Job watch could not list Jobs for 60 s")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _record(self, name: str, uid: str) -> None:
        with self._lock:
            self.uids[name].add(uid)

    def _run(self) -> None:
        first = True
        while not self._stop.is_set():
            try:
                listing = self.cluster.batch.list_namespaced_job(
                    self.namespace, _request_timeout=10
                )
                for job in listing.items:
                    self._record(job.metadata.name, job.metadata.uid)
                if not first:
                    self.relists += 1
                first = False
                self._started.set()
                version = listing.metadata.resource_version
                while not self._stop.is_set():
                    stream = watch.Watch().stream(
                        self.cluster.batch.list_namespaced_job,
                        self.namespace,
                        resource_version=version,
                        timeout_seconds=5,  # come back regularly to see _stop
                        _request_timeout=15,
                    )
                    for event in stream:
                        if event["type"] == "ERROR":
                            raise ApiException(status=event["raw_object"].get("code", 0))
                        job = event["object"]
                        self._record(job.metadata.name, job.metadata.uid)
                        version = job.metadata.resource_version
            except Exception as error:  # noqa: BLE001 - list again and go on
                self.errors.append(repr(error)[:200])
                self._stop.wait(1)

    @property
    def extra_jobs(self) -> dict[str, int]:
        """Names that had more than one Job, with how many."""
        with self._lock:
            return {name: len(uids) for name, uids in self.uids.items() if len(uids) > 1}

    @property
    def names(self) -> set[str]:
        with self._lock:
            return set(self.uids)
