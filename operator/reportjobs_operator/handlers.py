"""Thin kopf handlers: every event about a ReportJob, its Job or its pods reconciles it."""

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from reportjobs_model import crd
from reportjobs_model import labels as keys
from reportjobs_operator.reconcile import Reconciler


def _reconciler(memo: Any) -> Reconciler:
    reconciler: Reconciler = memo.reconciler
    return reconciler


async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Nothing of kopf's in status (no handler returns anything), Events for warnings only."""
    settings.posting.level = logging.WARNING
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage()
    settings.watching.server_timeout = 300
    # One explicit namespace and a CRD installed before us: no cluster-wide scanning of CRDs and
    # namespaces, which the namespaced RBAC forbids (kopf would retry 403s and log errors).
    settings.scanning.disabled = True


async def on_reportjob(name: str, namespace: str | None, memo: Any, **_: Any) -> None:
    if namespace:
        await _reconciler(memo).reconcile(namespace=namespace, name=name)


async def on_owned(labels: Mapping[str, str], namespace: str | None, memo: Any, **_: Any) -> None:
    """A Job or worker pod changed: reconcile the ReportJob its label names."""
    owner = labels.get(keys.REPORTJOB)
    if owner and namespace:
        await _reconciler(memo).reconcile(namespace=namespace, name=owner)


def register(registry: kopf.OperatorRegistry) -> None:
    """Put the handlers into a registry (no module-level decorators, no global state)."""
    on = kopf.on
    on.startup(registry=registry)(configure)
    on.login(registry=registry)(kopf.login_via_async_client)
    on.event(crd.GROUP, crd.VERSION, crd.PLURAL, id="reportjob", registry=registry)(on_reportjob)
    managed = {keys.MANAGED_BY: keys.OPERATOR}
    on.event("batch", "v1", "jobs", labels=managed, id="job", registry=registry)(on_owned)
    worker = {keys.REPORTJOB: kopf.PRESENT}
    on.event("v1", "pods", labels=worker, id="pod", registry=registry)(on_owned)
