"""The operator's requests to the Kubernetes API, besides its watches (one namespace).

A KubeApi made for one shard is fenced: `holds()` is asked right before every write, and a write
is not sent once it says no (ports.Fenced). sharding.py says when a replica holds a shard.
"""

from collections.abc import Callable

from reportjobs_kube import paths
from reportjobs_kube.client import JSON_PATCH, MERGE_PATCH, KubeClient
from reportjobs_kube.errors import Answered, Invalid, NotFound
from reportjobs_kube.errors import Conflict as KubeConflict
from reportjobs_model import labels
from reportjobs_model.window import Patch
from reportjobs_operator.job_pod_fields import STOPPED_DEADLINE, UNEXITED_PHASES
from reportjobs_operator.ports import Conflict, Fenced, Obj, Refused

WINDOW_SHARDS = f"{labels.MANAGED_BY}={labels.GATEWAY},{labels.COMPONENT}={labels.DEDUP_WINDOWS}"


def finalizers_patch(*, uid: str, before: list[str], after: list[str]) -> Patch:
    """metadata.finalizers from `before` to `after`, applied only to the object of this uid
    while it still has `before` (a missing list tests as null)."""
    return [
        {"op": "test", "path": "/metadata/uid", "value": uid},
        {"op": "test", "path": "/metadata/finalizers", "value": before or None},
        {"op": "add", "path": "/metadata/finalizers", "value": after},
    ]


_REFUSALS = (400, 403, 422)
"""What a create of a Job meets when the cluster will not have it as it is."""


def _always() -> bool:
    return True


class KubeApi:
    """Implements ReconcileApi, LeaseApi and WindowApi."""

    def __init__(
        self, *, client: KubeClient, namespace: str, holds: Callable[[], bool] = _always
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._holds = holds

    def _fence(self) -> None:
        if not self._holds():
            raise Fenced("this replica no longer holds the shard")

    async def _read(self, path: str) -> Obj | None:
        try:
            return (await self._client.request("GET", path)).data
        except NotFound:
            return None

    async def _write(
        self, method: str, path: str, body: Obj | Patch, *, content_type: str | None = None
    ) -> Obj:
        self._fence()
        try:
            answer = await self._client.request(method, path, body=body, content_type=content_type)
            return answer.data
        except KubeConflict as exc:
            raise Conflict(exc.reason) from exc

    async def _delete(self, path: str, *, uid: str, resource_version: str | None = None) -> None:
        """A no-op when it is gone (404) or is another object of that name, or (with
        `resource_version`) another version of it (409)."""
        self._fence()
        options = paths.delete_options(uid=uid, resource_version=resource_version)
        try:
            await self._client.request("DELETE", path, body=options)
        except (NotFound, KubeConflict):
            return

    async def get_reportjob(self, *, name: str) -> Obj | None:
        return await self._read(paths.reportjobs(self._namespace, name))

    async def replace_reportjob_status(self, *, body: Obj) -> Obj:
        name = body["metadata"]["name"]
        try:
            return await self._write("PUT", paths.reportjob_status(self._namespace, name), body)
        except NotFound as exc:  # deleted meanwhile: the next pass finds it gone
            raise Conflict("the ReportJob is gone") from exc

    async def create_reportjob(self, *, body: Obj) -> Obj:
        return await self._write("POST", paths.reportjobs(self._namespace), body)

    async def delete_reportjob(
        self, *, name: str, uid: str, resource_version: str | None = None
    ) -> None:
        path = paths.reportjobs(self._namespace, name)
        await self._delete(path, uid=uid, resource_version=resource_version)

    async def set_reportjob_finalizers(
        self, *, name: str, uid: str, before: list[str], after: list[str]
    ) -> Obj:
        path = paths.reportjobs(self._namespace, name)
        patch = finalizers_patch(uid=uid, before=before, after=after)
        try:
            return await self._write("PATCH", path, patch, content_type=JSON_PATCH)
        except (Invalid, NotFound) as exc:  # a test failed (422), or it is gone
            raise Conflict(exc.reason) from exc

    async def get_window_shard(self, *, name: str) -> Obj | None:
        return await self._read(paths.configmaps(self._namespace, name))

    async def get_job(self, *, name: str) -> Obj | None:
        return await self._read(paths.jobs(self._namespace, name))

    async def create_job(self, *, body: Obj) -> Obj:
        try:
            return await self._write("POST", paths.jobs(self._namespace), body)
        except Answered as exc:  # 409 is Conflict already
            if exc.status in _REFUSALS:  # a quota, a policy, admission
                raise Refused(f"{exc.status} {exc.reason}") from exc
            raise

    async def delete_job(self, *, name: str, uid: str) -> None:
        await self._delete(paths.jobs(self._namespace, name), uid=uid)

    async def stop_job(self, *, name: str, uid: str) -> Obj:
        # A uid that differs from the stored one is refused (uid is immutable): 422.
        patch = {"metadata": {"uid": uid}, "spec": {"activeDeadlineSeconds": STOPPED_DEADLINE}}
        path = paths.jobs(self._namespace, name)
        try:
            return await self._write("PATCH", path, patch, content_type=MERGE_PATCH)
        except NotFound as exc:  # deleted meanwhile: the next pass finds it gone
            raise Conflict("the Job is gone") from exc

    async def create_event(self, *, body: Obj) -> None:
        await self._write("POST", paths.events(self._namespace), body)

    async def delete_pods_of(self, *, reportjob: str, exited: bool) -> None:
        self._fence()
        query = {"labelSelector": f"{labels.REPORTJOB}={reportjob}"}
        if exited:
            query["fieldSelector"] = ",".join(f"status.phase!={phase}" for phase in UNEXITED_PHASES)
            query["gracePeriodSeconds"] = "0"
        await self._client.request("DELETE", paths.pods(self._namespace), query=query)

    async def list_leases(self, *, label_selector: str) -> list[Obj]:
        answer = await self._client.request(
            "GET", paths.leases(self._namespace), query={"labelSelector": label_selector}
        )
        items: list[Obj] = answer.data.get("items") or []
        return items

    async def delete_lease(self, *, name: str, uid: str) -> None:
        await self._delete(paths.leases(self._namespace, name), uid=uid)

    async def create_lease(self, *, body: Obj) -> Obj:
        return await self._write("POST", paths.leases(self._namespace), body)

    async def replace_lease(self, *, body: Obj) -> Obj:
        name = body["metadata"]["name"]
        return await self._write("PUT", paths.leases(self._namespace, name), body)

    async def list_window_shards(self) -> tuple[list[Obj], float]:
        answer = await self._client.request(
            "GET", paths.configmaps(self._namespace), query={"labelSelector": WINDOW_SHARDS}
        )
        items: list[Obj] = answer.data.get("items") or []
        return items, answer.server_time

    async def replace_window_shard(self, *, body: Obj) -> None:
        name = body["metadata"]["name"]
        await self._write("PUT", paths.configmaps(self._namespace, name), body)

    async def patch_window_shard(self, *, name: str, patch: Patch) -> None:
        path = paths.configmaps(self._namespace, name)
        try:
            await self._write("PATCH", path, patch, content_type=JSON_PATCH)
        except (Invalid, NotFound) as exc:  # a test failed (422), or the shard is gone
            raise Conflict(exc.reason) from exc
