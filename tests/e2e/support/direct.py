"""HTTP to a release's gateway straight at its Service's ClusterIP, and a client that retries.

On the local test bed this host reaches ClusterIPs through kube-proxy's iptables rules, which
keep working while the API server is down or etcd is frozen; the service proxy
(`support/gateway.py`) goes through the API server and breaks with it. On kind the ClusterIP is
not reachable from the host: `gateway_url` then answers None. On the local test bed it always
is, so there a ClusterIP that never answers fails the test: a broken gateway must not pass as
"not reachable from this host"."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.e2e.support.gateway import Answer
from tests.e2e.support.kube import Cluster
from tests.e2e.support.polling import wait_until
from tests.e2e.support.testbed import local_testbed_problem

SERVICE = "reportjobs-gateway"


def gateway_url(
    cluster: Cluster, namespace: str, *, service: str = SERVICE, timeout: float = 60
) -> str | None:
    """http://<ClusterIP>:<port> once this host can open a connection to it (kube-proxy programs
    a new Service's rules a moment after it exists). If it never could within ``timeout``: the
    test fails on the local test bed, where kube-proxy routes ClusterIPs to this host; elsewhere
    (kind) the answer is None."""
    spec = cluster.core.read_namespaced_service(service, namespace).spec
    port = next(p.port for p in spec.ports if p.name == "http")

    def connects() -> bool:
        socket.create_connection((spec.cluster_ip, port), timeout=3).close()
        return True

    try:
        wait_until(connects, timeout=timeout, what=f"a connection to {spec.cluster_ip}:{port}")
    except AssertionError as error:
        if local_testbed_problem(cluster) is None:
            pytest.fail(f"the gateway's ClusterIP never answered on the local test bed: {error}")
        return None
    return f"http://{spec.cluster_ip}:{port}"


@dataclass
class DirectGateway:
    base_url: str
    timeout: httpx.Timeout = field(default_factory=lambda: httpx.Timeout(30.0, connect=3.0))
    max_connections: int = 100

    def __post_init__(self) -> None:
        limits = httpx.Limits(
            max_connections=self.max_connections, max_keepalive_connections=self.max_connections
        )
        self.client = httpx.Client(base_url=self.base_url, timeout=self.timeout, limits=limits)

    def close(self) -> None:
        self.client.close()

    def request(self, method: str, path: str, *, body: Any = None) -> Answer:
        response = self.client.request(method, path, json=body)
        try:
            parsed: Any = response.json()
        except ValueError:
            parsed = response.text
        return Answer(
            status=response.status_code,
            headers={k.lower(): v for k, v in response.headers.items()},
            body=parsed,
        )

    def submit(self, object_id: str, **extra: Any) -> Answer:
        return self.request("POST", "/jobs", body={"object_id": object_id, **extra})


@dataclass
class Outcome:
    """What a retrying client saw for one object_id."""

    object_id: str
    answer: Answer | None = None  # the final 200/201 (or a 4xx, which is not retried)
    attempts: int = 0
    failures: list[str] = field(default_factory=list)  # connection errors and 5xx, in order
    job_ids: set[str] = field(default_factory=set)  # every job_id any 200/201 named

    @property
    def accepted(self) -> bool:
        return self.answer is not None and self.answer.status in (200, 201)


def submit_with_retries(
    gateway: DirectGateway, object_id: str, *, give_up_after: float = 180
) -> Outcome:
    """POST until a 2xx or 4xx answers: connection errors, timeouts and 5xx are retried with
    the same object_id (backoff 0.5 s doubling to 4 s), for at most ``give_up_after`` s.

    An answer without the gateway's X-Served-By header did not come from a gateway: while the
    Service has no ready endpoint, the test bed's network hands the connection to whatever
    answers for unrouted addresses (seen: a 404 from `server: keryx`). It is retried like a
    connection error."""
    outcome = Outcome(object_id=object_id)
    deadline = time.monotonic() + give_up_after
    backoff = 0.5
    while True:
        outcome.attempts += 1
        try:
            answer = gateway.submit(object_id)
        except httpx.HTTPError as error:
            outcome.failures.append(type(error).__name__)
        else:
            if answer.served_by is None:
                outcome.failures.append(f"not from a gateway: {answer.status}")
            elif answer.status < 500:
                if answer.status in (200, 201) and isinstance(answer.body, dict):
                    outcome.job_ids.add(answer.body["job_id"])
                outcome.answer = answer
                return outcome
            else:
                outcome.failures.append(f"{answer.status} {json.dumps(answer.body)[:120]}")
        if time.monotonic() + backoff > deadline:
            return outcome
        time.sleep(backoff)  # retry pacing, not a wait for a condition
        backoff = min(backoff * 2, 4.0)
