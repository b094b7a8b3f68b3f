"""Waiting for a job on the test bed: `?wait=N` answers once the job is terminal, within a few
seconds of the job's own `finished_at` (not at the end of the wait), and the SSE stream sends
each status change and ends after the terminal one (both woken by the gateway's watch of the
ReportJobs)."""

from __future__ import annotations

import itertools
import json
import time
from datetime import datetime

import httpx
import pytest

from tests.e2e.conftest import DeployRelease
from tests.e2e.support.direct import gateway_url
from tests.e2e.support.kube import TERMINAL, Cluster
from tests.e2e.support.polling import wait_until

WAIT = 60  # the gateway's largest ?wait
WOKEN_WITHIN = 10
"""Seconds from the job's finished_at to the ?wait answer. finished_at is the Job controller's
stamp of the Job's Complete condition (whole seconds, so up to 1 s early); then the operator's
watch of the Jobs sees it and writes the outcome, and the gateway's watch of the ReportJobs
wakes the waiting request. A gateway that is not woken answers at the end of the wait, tens of
seconds later (the job finishes at most SLEEP + 2 s into it)."""
SLEEP = 10  # the work's least length: a wait sent once the job is Running begins before its end


def _unix(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


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
    deploy_release: DeployRelease, cluster: Cluster, figures: dict[str, object]
) -> None:
    release = deploy_release(job={"sleepMinSeconds": SLEEP, "sleepMaxSeconds": SLEEP + 2})
    url = gateway_url(cluster, release.namespace)
    if url is None:
        pytest.skip("the gateway's ClusterIP is not reachable from this host")
    with httpx.Client(base_url=url, timeout=90) as client:
        first = client.post("/jobs", json={"object_id": "waited"}).json()["job_id"]
        short = client.get(f"/jobs/{first}", params={"wait": 1})
        assert short.status_code == 200
        assert short.json()["status"] not in TERMINAL  # the work takes SLEEP s or more
        # Once the job is Running (however long its pod took to start), what is left of its
        # work is shorter than one wait: the wait must end with the job terminal.
        wait_until(
            lambda: client.get(f"/jobs/{first}").json()["status"] == "Running",
            timeout=180,
            interval=0.5,
            what=f"{first} to be Running",
        )
        sent = time.time()  # the clock the cluster stamps with: the same machine's
        waited = client.get(f"/jobs/{first}", params={"wait": WAIT}, timeout=WAIT + 30)
        answered = time.time()
        body = waited.json()
        assert body["status"] == "Succeeded", body
        finished = _unix(body["finished_at"])
        woken = answered - finished
        # The wait began before the job finished (the stamp drops the fraction), so it was
        # woken by the change, and answered shortly after the job finished.
        assert sent < finished + 1, (sent, body)
        assert 0 <= woken <= WOKEN_WITHIN, (woken, answered - sent, body)
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
    print(
        f"\n?wait={WAIT} answered {woken:.1f}s after the job's finished_at ({answered - sent:.1f}"
        f"s after it was sent) with Succeeded; the stream sent {statuses}"
    )
    figures.update(woken_seconds_after_finished_at=round(woken, 1))
