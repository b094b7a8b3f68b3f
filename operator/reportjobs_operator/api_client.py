"""The only module of the operator that calls the Kubernetes API directly (kopf aside)."""

import os
from collections.abc import Awaitable
from typing import Any, Self

from kubernetes_asyncio.client import (
    ApiClient,
    BatchV1Api,
    Configuration,
    CoordinationV1Api,
    CoreV1Api,
    CustomObjectsApi,
)
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config import load_incluster_config, load_kube_config

from reportjobs_model import crd, labels
from reportjobs_model.timestamps import unix_of_http_date
from reportjobs_operator.ports import Conflict, Obj

_CRD: dict[str, Any] = {"group": crd.GROUP, "version": crd.VERSION, "plural": crd.PLURAL}
_WINDOW_SHARDS = f"{labels.MANAGED_BY}={labels.GATEWAY},{labels.COMPONENT}={labels.DEDUP_WINDOWS}"


def _delete_options(uid: str) -> Obj:
    return {"preconditions": {"uid": uid}, "propagationPolicy": "Background"}


class KubeApi:
    """Implements ReconcileApi, LeaseApi and WindowApi with kubernetes_asyncio."""

    def __init__(self, client: ApiClient, *, timeout: float) -> None:
        self._client = client
        self._timeout = timeout
        # Typed as Any: the generated signatures want model objects, we send JSON dicts.
        self._objects: Any = CustomObjectsApi(client)
        self._batch: Any = BatchV1Api(client)
        self._core: Any = CoreV1Api(client)
        self._leases: Any = CoordinationV1Api(client)

    @classmethod
    async def connect(cls, *, request_timeout: float) -> Self:
        """In-cluster configuration when KUBERNETES_SERVICE_HOST is set, else kubeconfig."""
        configuration = Configuration()
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            await load_kube_config(client_configuration=configuration)
        return cls(ApiClient(configuration=configuration), timeout=request_timeout)

    async def close(self) -> None:
        await self._client.close()

    async def _plain(self, call: Awaitable[Any]) -> Obj:
        """Await a call and give its answer as the API's JSON (camelCase keys)."""
        try:
            answer = await call
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(exc.reason) from exc
            raise
        sanitized: Obj = self._client.sanitize_for_serialization(answer)
        return sanitized

    async def _or_none(self, call: Awaitable[Any]) -> Obj | None:
        """Like _plain, with 404 (and, for preconditioned deletes, 409) giving None."""
        try:
            return await self._plain(call)
        except Conflict:
            return None
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def get_reportjob(self, *, namespace: str, name: str) -> Obj | None:
        return await self._or_none(
            self._objects.get_namespaced_custom_object(
                **_CRD, namespace=namespace, name=name, _request_timeout=self._timeout
            )
        )

    async def list_reportjobs(self, *, namespace: str) -> list[Obj]:
        answer = await self._plain(
            self._objects.list_namespaced_custom_object(
                **_CRD, namespace=namespace, _request_timeout=self._timeout
            )
        )
        items: list[Obj] = answer.get("items") or []
        return items

    async def list_job_names(self, *, namespace: str) -> list[str]:
        answer = await self._plain(
            self._batch.list_namespaced_job(
                namespace,
                label_selector=f"{labels.MANAGED_BY}={labels.OPERATOR}",
                _request_timeout=self._timeout,
            )
        )
        return [item["metadata"]["name"] for item in answer.get("items") or []]

    async def replace_reportjob_status(self, *, namespace: str, body: Obj) -> Obj:
        try:
            return await self._plain(
                self._objects.replace_namespaced_custom_object_status(
                    **_CRD,
                    namespace=namespace,
                    name=body["metadata"]["name"],
                    body=body,
                    _request_timeout=self._timeout,
                )
            )
        except ApiException as exc:
            if exc.status == 404:  # deleted meanwhile: the next pass finds it gone
                raise Conflict("the ReportJob is gone") from exc
            raise

    async def delete_reportjob(self, *, namespace: str, name: str, uid: str) -> None:
        await self._or_none(
            self._objects.delete_namespaced_custom_object(
                **_CRD,
                namespace=namespace,
                name=name,
                body=_delete_options(uid),
                _request_timeout=self._timeout,
            )
        )

    async def get_job(self, *, namespace: str, name: str) -> Obj | None:
        return await self._or_none(
            self._batch.read_namespaced_job(name, namespace, _request_timeout=self._timeout)
        )

    async def create_job(self, *, namespace: str, body: Obj) -> Obj:
        return await self._plain(
            self._batch.create_namespaced_job(namespace, body, _request_timeout=self._timeout)
        )

    async def delete_job(self, *, namespace: str, name: str, uid: str) -> None:
        await self._or_none(
            self._batch.delete_namespaced_job(
                name, namespace, body=_delete_options(uid), _request_timeout=self._timeout
            )
        )

    async def list_worker_pods(self, *, namespace: str, reportjob: str) -> list[Obj]:
        answer = await self._plain(
            self._core.list_namespaced_pod(
                namespace,
                label_selector=f"{labels.REPORTJOB}={reportjob}",
                _request_timeout=self._timeout,
            )
        )
        items: list[Obj] = answer.get("items") or []
        return items

    async def get_lease(self, *, namespace: str, name: str) -> Obj | None:
        return await self._or_none(
            self._leases.read_namespaced_lease(name, namespace, _request_timeout=self._timeout)
        )

    async def create_lease(self, *, namespace: str, body: Obj) -> Obj:
        return await self._plain(
            self._leases.create_namespaced_lease(namespace, body, _request_timeout=self._timeout)
        )

    async def replace_lease(self, *, namespace: str, body: Obj) -> Obj:
        return await self._plain(
            self._leases.replace_namespaced_lease(
                body["metadata"]["name"], namespace, body, _request_timeout=self._timeout
            )
        )

    async def list_window_shards(self, *, namespace: str) -> tuple[list[Obj], float]:
        answer, _status, headers = await self._core.list_namespaced_config_map_with_http_info(
            namespace, label_selector=_WINDOW_SHARDS, _request_timeout=self._timeout
        )
        items: list[Obj] = self._client.sanitize_for_serialization(answer).get("items") or []
        return items, unix_of_http_date(headers["Date"])

    async def replace_window_shard(self, *, namespace: str, body: Obj) -> None:
        await self._plain(
            self._core.replace_namespaced_config_map(
                body["metadata"]["name"], namespace, body, _request_timeout=self._timeout
            )
        )
