"""A thin synchronous view of the cluster for the e2e tests (official `kubernetes` client)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.rest import ApiException

GROUP, VERSION, PLURAL = "reportjobs.io", "v1alpha1", "reportjobs"
TERMINAL = {"Succeeded", "Failed", "TimedOut", "Cancelled"}


@dataclass
class Cluster:
    api: client.ApiClient

    @classmethod
    def from_kubeconfig(cls, path: str) -> Cluster:
        return cls(api=config.new_client_from_config(config_file=path))

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def batch(self) -> client.BatchV1Api:
        return client.BatchV1Api(self.api)

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def reportjobs(self, namespace: str) -> list[dict[str, Any]]:
        listing = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        return list(listing["items"])

    def reportjob(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return dict(
                self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def release_reportjobs(self, namespace: str) -> int:
        """Remove every ReportJob's finalizers in a namespace being deleted (its operator is
        going or gone, and nothing holds the claims any more): the namespace can go. How many
        ReportJobs are still there (0: none left)."""
        try:
            items = self.reportjobs(namespace)
        except ApiException as error:
            if error.status == 404:  # no CRD, or no namespace: nothing to release
                return 0
            raise
        for item in items:
            if not item["metadata"].get("finalizers"):
                continue  # going
            try:
                self.custom.patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    namespace,
                    PLURAL,
                    item["metadata"]["name"],
                    {"metadata": {"finalizers": None}},  # a merge patch
                )
            except ApiException as error:
                if error.status != 404:  # gone meanwhile
                    raise
        return len(items)

    def jobs(self, namespace: str) -> list[client.V1Job]:
        return list(self.batch.list_namespaced_job(namespace).items)

    def job_uids(self, namespace: str) -> dict[str, int]:
        """How many distinct batch Jobs each name ever had, from the events that name them
        (a Job deleted and created again under its name has two; events stay for an hour)."""
        events = self.core.list_namespaced_event(
            namespace, field_selector="involvedObject.kind=Job"
        ).items
        uids: dict[str, set[str]] = {}
        for event in events:
            uids.setdefault(event.involved_object.name, set()).add(event.involved_object.uid)
        return {name: len(found) for name, found in uids.items()}

    def worker_pods(self, namespace: str, reportjob: str | None = None) -> list[client.V1Pod]:
        selector = (
            f"reportjobs.io/reportjob={reportjob}" if reportjob else "reportjobs.io/reportjob"
        )
        return list(self.core.list_namespaced_pod(namespace, label_selector=selector).items)

    def pods(self, namespace: str, component: str) -> list[client.V1Pod]:
        selector = f"app.kubernetes.io/component={component}"
        return list(self.core.list_namespaced_pod(namespace, label_selector=selector).items)

    def ready_pods(self, namespace: str, component: str) -> list[client.V1Pod]:
        return [pod for pod in self.pods(namespace, component) if is_ready(pod)]

    def metrics(self, namespace: str, pod: str, port: int) -> dict[str, float]:
        """A pod's Prometheus metrics (through the API server's pod proxy), unlabelled and
        labelled series alike, as `name{labels}` -> value."""
        text = self.core.connect_get_namespaced_pod_proxy_with_path(
            f"{pod}:{port}", namespace, "metrics"
        )
        samples: dict[str, float] = {}
        for line in str(text).splitlines():
            if line and not line.startswith("#"):
                series, _, value = line.rpartition(" ")
                samples[series] = float(value)
        return samples

    def force_delete_pod(self, namespace: str, name: str) -> None:
        try:
            self.core.delete_namespaced_pod(
                name, namespace, grace_period_seconds=0, propagation_policy="Background"
            )
        except ApiException as error:
            if error.status != 404:
                raise


def kubectl_binary() -> str:
    """$KUBECTL, else kubectl on PATH, else the one the local test bed built."""
    built = Path("/var/cache/reportjobs/k8s-v1.20.2/bin/kubectl")
    return os.environ.get("KUBECTL") or shutil.which("kubectl") or str(built)


def is_ready(pod: client.V1Pod) -> bool:
    if pod.metadata.deletion_timestamp is not None:
        return False
    conditions = pod.status.conditions or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)
