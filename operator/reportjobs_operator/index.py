"""The operator's in-memory index of one shard: its ReportJobs, their Jobs and worker pods, fed by
three watches that select the shard's bucket labels on the server (reportjobs_model.shards).

Reconcile reads only from here (ports.Cache). A change wakes the ReportJob it concerns only
when something reconcile looks at changed (`relevant_*`), so the echo of our own write, a
pod's IP or a Job's `active` count costs nothing. Objects are trimmed to what reconcile reads.
"""

from collections.abc import Callable
from typing import Any

from reportjobs_kube import paths
from reportjobs_kube.client import KubeClient
from reportjobs_kube.informer import Informer, without_managed_fields
from reportjobs_model import labels
from reportjobs_operator.ports import Obj

_METADATA = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "finalizers",
    "labels",
    "annotations",
    "ownerReferences",
)


def _metadata(obj: Obj) -> Obj:
    metadata = obj.get("metadata") or {}
    return {key: metadata[key] for key in _METADATA if key in metadata}


def trim_job(job: Obj) -> Obj:
    spec = job.get("spec") or {}
    return {
        "kind": "Job",
        "metadata": _metadata(job),
        "spec": {"activeDeadlineSeconds": spec.get("activeDeadlineSeconds")},
        "status": {"conditions": (job.get("status") or {}).get("conditions") or []},
    }


def trim_pod(pod: Obj) -> Obj:
    status = pod.get("status") or {}
    containers = [{"state": c.get("state") or {}} for c in status.get("containerStatuses") or []]
    return {
        "kind": "Pod",
        "metadata": _metadata(pod),
        "status": {"phase": status.get("phase"), "containerStatuses": containers},
    }


def _identity(obj: Obj | None) -> Any:
    if obj is None:
        return None
    metadata = obj["metadata"]
    return metadata.get("uid"), metadata.get("deletionTimestamp") is not None


def relevant_reportjob(obj: Obj | None) -> Any:
    return obj and (_identity(obj), obj.get("spec"), obj.get("status"))


def relevant_job(obj: Obj | None) -> Any:
    if obj is None:
        return None
    kinds = sorted(
        c.get("type", "") for c in obj["status"]["conditions"] if c.get("status") == "True"
    )
    return _identity(obj), kinds


def relevant_pod(obj: Obj | None) -> Any:
    return obj and (_identity(obj), obj["status"])


def _owner(obj: Obj | None) -> str | None:
    return None if obj is None else (obj["metadata"].get("labels") or {}).get(labels.REPORTJOB)


class Index:
    """Implements ports.Cache; `wake(name)` is called for each relevant change."""

    def __init__(
        self,
        *,
        client: KubeClient,
        namespace: str,
        selector: str,
        wake: Callable[[str], None],
    ) -> None:
        """`selector`: the label selector of the shard (shards.selector_of)."""
        self._wake = wake
        self._pods_by_owner: dict[str, set[str]] = {}
        self.reportjobs = Informer(
            client=client,
            path=paths.reportjobs(namespace),
            label_selector=selector,
            trim=without_managed_fields,
            on_change=self._on_reportjob,
        )
        self.jobs = Informer(
            client=client,
            path=paths.jobs(namespace),
            label_selector=f"{labels.MANAGED_BY}={labels.OPERATOR},{selector}",
            trim=trim_job,
            on_change=self._on_job,
        )
        self.pods = Informer(
            client=client,
            path=paths.pods(namespace),
            label_selector=f"{labels.REPORTJOB},{selector}",
            trim=trim_pod,
            on_change=self._on_pod,
        )
        self.informers = (self.reportjobs, self.jobs, self.pods)

    def reportjob_names(self) -> set[str]:
        """The names of the ReportJobs held now (for the window sweep)."""
        return self.reportjobs.names()

    # ports.Cache
    def reportjob(self, name: str) -> Obj | None:
        return self.reportjobs.get(name)

    def job(self, name: str) -> Obj | None:
        return self.jobs.get(name)

    def pods_of(self, reportjob: str) -> list[Obj]:
        names = self._pods_by_owner.get(reportjob, ())
        return [pod for name in sorted(names) if (pod := self.pods.get(name)) is not None]

    def remember(self, obj: Obj) -> None:
        self._informer_of(obj).remember(obj)

    def forget(self, obj: Obj) -> None:
        self._informer_of(obj).forget(obj)

    def _informer_of(self, obj: Obj) -> Informer:
        kind = obj.get("kind")
        return self.jobs if kind == "Job" else self.pods if kind == "Pod" else self.reportjobs

    # change handlers (called by the informers)
    def _on_reportjob(self, old: Obj | None, new: Obj | None) -> None:
        if relevant_reportjob(old) != relevant_reportjob(new):
            self._wake(str((new or old or {})["metadata"]["name"]))

    def _on_job(self, old: Obj | None, new: Obj | None) -> None:
        owner = _owner(new) or _owner(old)
        if owner and relevant_job(old) != relevant_job(new):
            self._wake(owner)

    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        name = str((new or old or {})["metadata"]["name"])
        if old is not None and (previous := _owner(old)):
            self._pods_by_owner.get(previous, set()).discard(name)
            if not self._pods_by_owner.get(previous, True):
                del self._pods_by_owner[previous]
        owner = _owner(new)
        if new is not None and owner:
            self._pods_by_owner.setdefault(owner, set()).add(name)
        woken = owner or _owner(old)
        if woken and relevant_pod(old) != relevant_pod(new):
            self._wake(woken)
