"""Paths of the API resources we use, and the bodies every writer shares."""

from typing import Any

from reportjobs_model import crd


def reportjobs(namespace: str, name: str = "") -> str:
    return _named(f"/apis/{crd.GROUP}/{crd.VERSION}/namespaces/{namespace}/{crd.PLURAL}", name)


def reportjob_status(namespace: str, name: str) -> str:
    return f"{reportjobs(namespace, name)}/status"


def jobs(namespace: str, name: str = "") -> str:
    return _named(f"/apis/batch/v1/namespaces/{namespace}/jobs", name)


def pods(namespace: str, name: str = "") -> str:
    return _named(f"/api/v1/namespaces/{namespace}/pods", name)


def configmaps(namespace: str, name: str = "") -> str:
    return _named(f"/api/v1/namespaces/{namespace}/configmaps", name)


def leases(namespace: str, name: str = "") -> str:
    return _named(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases", name)


def events(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/events"


def _named(collection: str, name: str) -> str:
    return f"{collection}/{name}" if name else collection


def delete_options(*, uid: str, resource_version: str | None = None) -> dict[str, Any]:
    """Delete only the object of this uid (not a successor of the same name), and with
    `resource_version` only that version of it; dependents are collected in the background."""
    preconditions = {"uid": uid}
    if resource_version is not None:
        preconditions["resourceVersion"] = resource_version
    return {"preconditions": preconditions, "propagationPolicy": "Background"}
