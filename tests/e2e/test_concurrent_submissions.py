"""1000 identical submissions at once over 3 gateway replicas: one job, one 201."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx

from tests.e2e.conftest import DeployRelease
from tests.e2e.support.direct import gateway_url
from tests.e2e.support.jobwatch import JobWatch
from tests.e2e.support.kube import TERMINAL, Cluster
from tests.e2e.support.polling import wait_until

CLIENTS = 1000
OBJECT_ID = "the-one-object"


@dataclass
class Answered:
    status: int
    job_id: str | None
    served_by: str | None
    retries: int
    seconds: float


def http_client(cluster: Cluster, namespace: str) -> httpx.AsyncClient:
    """Straight to the ClusterIP when this host reaches it (the local test bed), else through
    the API server's service proxy with the kubeconfig's credentials (kind)."""
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=0)
    timeout = httpx.Timeout(60.0, connect=10.0)
    url = gateway_url(cluster, namespace)
    if url is not None:
        return httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout)
    conf = cluster.api.configuration
    headers = {
        auth["key"]: auth["value"]
        for auth in conf.auth_settings().values()
        if auth["in"] == "header" and auth["value"]
    }
    service = f"/api/v1/namespaces/{namespace}/services/reportjobs-gateway:http/proxy"
    proxy = conf.host.rstrip("/") + service
    cert = (conf.cert_file, conf.key_file) if conf.cert_file else None
    return httpx.AsyncClient(
        base_url=proxy,
        headers=headers,
        cert=cert,
        verify=conf.ssl_ca_cert or conf.verify_ssl,
        limits=limits,
        timeout=timeout,
    )


async def submit_all(client: httpx.AsyncClient) -> list[Answered]:
    go = asyncio.Event()

    async def one() -> Answered:
        await go.wait()
        started = time.monotonic()
        retries = 0
        while True:  # retry connection errors and 5xx with the same object_id, bounded
            try:
                response = await client.post("/jobs", json={"object_id": OBJECT_ID})
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code < 500:
                body: Any = response.json()
                return Answered(
                    status=response.status_code,
                    job_id=body.get("job_id") if isinstance(body, dict) else None,
                    served_by=response.headers.get("x-served-by"),
                    retries=retries,
                    seconds=time.monotonic() - started,
                )
            retries += 1
            if retries > 10:
                status = response.status_code if response is not None else -1
                return Answered(status, None, None, retries, time.monotonic() - started)
            await asyncio.sleep(1)  # retry pacing

    tasks = [asyncio.create_task(one()) for _ in range(CLIENTS)]
    await asyncio.sleep(0.5)  # let every task reach the start line
    go.set()
    return list(await asyncio.gather(*tasks))


def test_thousand_concurrent_identical_submissions_make_one_job(
    deploy_release: DeployRelease, cluster: Cluster
) -> None:
    release = deploy_release(
        gateway={"replicas": 3},
        dedup={"windowSeconds": 3600},
        job={"sleepMinSeconds": 5, "sleepMaxSeconds": 5},
    )
    namespace = release.namespace
    with JobWatch(cluster, namespace) as jobs:

        async def run() -> tuple[list[Answered], str]:
            async with http_client(cluster, namespace) as client:
                return await submit_all(client), str(client.base_url)

        started = time.monotonic()
        answers, via = asyncio.run(run())
        elapsed = time.monotonic() - started
        statuses = Counter(a.status for a in answers)
        job_ids = Counter(a.job_id for a in answers)
        served = Counter(a.served_by for a in answers)
        seconds = sorted(a.seconds for a in answers)
        print(
            f"\n{CLIENTS} concurrent identical POSTs via {via} in {elapsed:.1f}s: "
            f"statuses {dict(statuses)}, job_ids {len(job_ids)}, "
            f"retried {sum(1 for a in answers if a.retries)} "
            f"({sum(a.retries for a in answers)} retries)\n"
            f"  served by {dict(served)}\n"
            f"  latency p50 {statistics.median(seconds):.2f}s p95 "
            f"{seconds[int(0.95 * len(seconds)) - 1]:.2f}s max {seconds[-1]:.2f}s"
        )
        assert statuses[201] == 1, statuses
        assert statuses[200] == CLIENTS - 1, statuses
        assert len(job_ids) == 1, job_ids
        (job_id,) = job_ids
        assert job_id is not None
        assert len(served) == 3, f"all 3 gateway replicas must have answered: {served}"

        # The one ReportJob becomes one Job; the watch records every Job until the job ends.
        wait_until(lambda: jobs.names, timeout=120, what="the batch Job")
        wait_until(
            lambda: (
                (cluster.reportjob(namespace, job_id) or {}).get("status", {}).get("phase")
                in TERMINAL
            ),
            timeout=180,
            what="the job to finish",
        )
        rj_names = [rj["metadata"]["name"] for rj in cluster.reportjobs(namespace)]

    job_uids = {name: len(uids) for name, uids in jobs.uids.items()}
    print(f"  ReportJobs {rj_names}; batch Jobs (uids per name) {job_uids}")
    assert rj_names == [job_id]
    assert job_uids == {job_id: 1}, "one batch Job, created once"
