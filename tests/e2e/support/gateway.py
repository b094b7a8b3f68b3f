"""HTTP to a release's gateway through the API server's service proxy: works the same on the
local test bed and on kind, without NodePorts or port-forwards."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubernetes import client


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def served_by(self) -> str | None:
        return self.headers.get("x-served-by")


@dataclass
class Gateway:
    api: client.ApiClient
    namespace: str
    service: str = "reportjobs-gateway"
    port: str = "http"

    def _url(self, path: str) -> str:
        host = self.api.configuration.host.rstrip("/")
        return (
            f"{host}/api/v1/namespaces/{self.namespace}/services/"
            f"{self.service}:{self.port}/proxy{path}"
        )

    def request(
        self, method: str, path: str, *, body: Any = None, raw: bytes | None = None
    ) -> Answer:
        headers = {"Accept": "application/json"}
        for auth in self.api.configuration.auth_settings().values():
            if auth["in"] == "header" and auth["value"]:
                headers[auth["key"]] = auth["value"]
        payload = raw if raw is not None else None if body is None else json.dumps(body).encode()
        if payload is not None:
            headers["Content-Type"] = "application/json"
        response = self.api.rest_client.pool_manager.request(
            method, self._url(path), body=payload, headers=headers, timeout=30.0, retries=False
        )
        text = response.data.decode("utf-8", errors="replace")
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = text
        return Answer(
            status=response.status,
            headers={k.lower(): v for k, v in response.headers.items()},
            body=parsed,
        )

    def submit(self, object_id: str, method: str = "POST", **extra: Any) -> Answer:
        return self.request(method, "/jobs", body={"object_id": object_id, **extra})

    def job(self, job_id: str) -> Answer:
        return self.request("GET", f"/jobs/{job_id}")
