"""Waiting for a job on the test bed: `?wait=N` answers once the job is terminal, and the SSE
stream sends each status change and ends after the terminal one (both woken by the gateway's
watch of the ReportJobs)."""

from __future__ import annotations

import itertools
import json
import time

import httpx
import pytest

from tests.e2e.conftest import DeployRelease
from tests.e2e.support.direct import gateway_url
from tests.e2e.support.kube import TERMINAL, Cluster


def _events(client: httpx.Client, path: str, **headers: str) -> list[dict[str, str]]:
    """Read the stream to its end; its events (comments and pings skipped)."""
    events, fields = [], {}
    with client.stream("GET", path, headers=headers, timeout=120) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line:
                if "data" in fields:
                    events.append(fields)
                fields = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(": ")
                fields[key] = value
    return events


def test_wait_and_the_event_stream_follow_a_job_to_its_end(
    deploy_release: DeployRelease, cluster: Cluster
) -> None:
    release = deploy_release(job={"sleepMinSeconds": 4, "sleepMaxSeconds": 6})
    url = gateway_url(cluster, release.namespace)
    if url is None:
        pytest.skip("the gateway's ClusterIP is not reachable from this host")
    with httpx.Client(base_url=url, timeout=90) as client:
        first = client.post("/jobs", json={"object_id": "waited"}).json()["job_id"]
        short = client.get(f"/jobs/{first}", params={"wait": 1})
        assert short.status_code == 200
        assert short.json()["status"] not in TERMINAL  # the work takes 4-6 s
        started = time.monotonic()
        waited = client.get(f"/jobs/{first}", params={"wait": 60})
        took = time.monotonic() - started
        assert waited.json()["status"] == "Succeeded", waited.json()
        assert took < 55, took  # answered at the end of the job, not of the wait
        assert client.get(f"/jobs/{first}", params={"wait": 0}).status_code == 422

        second = client.post("/jobs", json={"object_id": "streamed"}).json()["job_id"]
        events = _events(client, f"/jobs/{second}/events")
        statuses = [json.loads(e["data"])["status"] for e in events]
        assert statuses[-1] == "Succeeded", statuses
        assert "Running" in statuses, statuses
        bodies = [e["data"] for e in events]
        assert all(a != b for a, b in itertools.pairwise(bodies)), bodies  # changes
        order = ["Pending", "Running", "Succeeded"]
        assert [order.index(s) for s in statuses] == sorted(order.index(s) for s in statuses)
        assert all(e.get("event") == "job" and e.get("id") for e in events), events
        # Reconnecting with the last id: nothing new, and the stream ends at once.
        assert (
            _events(client, f"/jobs/{second}/events", **{"Last-Event-ID": events[-1]["id"]}) == []
        )
        # With an earlier id: the current state only.
        later = _events(client, f"/jobs/{second}/events", **{"Last-Event-ID": events[0]["id"]})
        assert [json.loads(e["data"])["status"] for e in later] == ["Succeeded"]
        assert client.get("/jobs/rj-0123456789abcdef01234567-1/events").status_code == 404
    print(f"\n?wait=60 answered after {took:.1f}s with Succeeded; the stream sent {statuses}")
