"""What a failed e2e test leaves behind: pod logs, events and ReportJobs of its namespace."""

from __future__ import annotations

import json

from kubernetes.client.rest import ApiException

from tests.e2e.support.kube import Cluster


def dump_namespace(cluster: Cluster, namespace: str) -> str:
    lines = [f"===== diagnostics for namespace {namespace} ====="]
    try:
        for rj in cluster.reportjobs(namespace):
            lines.append(f"--- ReportJob {rj['metadata']['name']}: {json.dumps(rj.get('status'))}")
        for pod in cluster.core.list_namespaced_pod(namespace).items:
            lines.append(f"--- pod {pod.metadata.name} phase={pod.status.phase}")
            for container in pod.spec.containers:
                try:
                    log = cluster.core.read_namespaced_pod_log(
                        pod.metadata.name, namespace, container=container.name, tail_lines=60
                    )
                except ApiException as error:
                    log = f"(no log: {error.reason})"
                lines.append(log or "(empty log)")
        events = cluster.core.list_namespaced_event(namespace).items
        events.sort(key=lambda e: str(e.last_timestamp or e.event_time or ""))
        lines.append("--- events")
        lines.extend(
            f"{e.last_timestamp} {e.type} {e.involved_object.kind}/{e.involved_object.name} "
            f"{e.reason}: {e.message}"
            for e in events[-80:]
        )
    except ApiException as error:
        lines.append(f"(could not read the namespace: {error.reason})")
    return "\n".join(lines)
