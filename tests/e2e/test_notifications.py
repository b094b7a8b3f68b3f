"""Signed webhooks on the test bed: a receiver on this host (reachable from pods at the CNI
bridge's address, let through by notifications.allowedCIDRs) verifies every delivery with
standardwebhooks. Delivered on success, timeout, cancel and failure; a receiver down for three
attempts gets the fourth; 410 fails at once; a shard owner SIGKILLed between an attempt and the
next: its successor delivers; SSRF refusals at submission."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from reportjobs_model.shards import shard_of
from tests.e2e.conftest import DeployRelease
from tests.e2e.support.jobs import wait_terminal
from tests.e2e.support.kube import Cluster
from tests.e2e.support.polling import wait_until
from tests.e2e.support.shards import shard_holders
from tests.e2e.support.testbed import kill_pod_processes, local_testbed_problem

# The module's tests share one release: pytest-xdist (--dist loadgroup) keeps them on one worker.
pytestmark = pytest.mark.xdist_group("test_notifications")


BRIDGE = "10.1.0.1"  # the host's address on the first node's CNI bridge
SHARDS = 16


class Receiver:
    """Answers POST /<path> from a script per path (then 200); keeps what it verified."""

    def __init__(self, secret: str, scripts: dict[str, list[int]]) -> None:
        self.webhook = Webhook(secret)
        self.scripts = defaultdict(list, {k: list(v) for k, v in scripts.items()})
        self.got: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.bad: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                path = self.path.strip("/")
                try:
                    receiver.webhook.verify(body, dict(self.headers.items()))
                except Exception as error:  # noqa: BLE001 - a bad delivery is recorded
                    receiver.bad.append(f"{path}: {error!r}")
                    self.send_response(400)
                    self.end_headers()
                    return
                with receiver.lock:
                    receiver.got[path].append(
                        {"id": self.headers["webhook-id"], "body": json.loads(body)}
                    )
                    script = receiver.scripts[path]
                    code = script.pop(0) if script else 200
                self.send_response(code)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("0.0.0.0", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://{BRIDGE}:{self.port}/{path}"

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def notifying(
    deploy_module_release: DeployRelease, cluster: Cluster
) -> Iterator[tuple[Any, Receiver]]:
    """One release and receiver for the module's tests; each uses its own receiver paths."""
    if local_testbed_problem(cluster):
        pytest.skip("the receiver must be reachable from pods (the local test bed's bridge)")
    release = deploy_module_release(
        operator={"replicas": 2},
        job={"sleepMinSeconds": 2, "sleepMaxSeconds": 3},
        notifications={"allowedCIDRs": [f"{BRIDGE}/32"], "backoffSeconds": 4},
    )
    secret = cluster.core.read_namespaced_secret("reportjobs-webhook", release.namespace)
    receiver = Receiver(
        base64.b64decode(secret.data["secret"]).decode(),
        {"down3": [503, 503, 503], "gone": [410], "takeover": [503]},
    )
    yield release, receiver
    receiver.close()


def _delivered(gateway: Any, job_id: str) -> dict[str, Any]:
    return wait_until(
        lambda: (
            (job := gateway.job(job_id).body).get("notification")
            and job["notification"]["state"] in ("Delivered", "Failed")
            and job
        ),
        timeout=180,
        interval=1,
        what=f"the notification of {job_id} to be settled",
    )


def test_deliveries_are_signed_retried_and_final(
    notifying: tuple[Any, Receiver], cluster: Cluster
) -> None:
    release, receiver = notifying
    gateway = release.gateway
    ok = gateway.submit("hook-ok", callback_url=receiver.url("ok")).body["job_id"]
    late = gateway.submit("hook-late", callback_url=receiver.url("late"), timeout_seconds=1)
    down = gateway.submit("hook-down", callback_url=receiver.url("down3")).body["job_id"]
    gone = gateway.submit("hook-gone", callback_url=receiver.url("gone")).body["job_id"]
    late_id = late.body["job_id"]

    for job_id, state, attempts in (
        (ok, "Delivered", 1),
        (down, "Delivered", 4),
        (gone, "Failed", 1),
    ):
        job = _delivered(gateway, job_id)
        assert job["status"] == "Succeeded"
        assert (job["notification"]["state"], job["notification"]["attempts"]) == (state, attempts)
    timed_out = _delivered(gateway, late_id)
    assert timed_out["status"] == "TimedOut"
    assert timed_out["notification"]["state"] == "Delivered"

    assert receiver.bad == []
    (delivery,) = receiver.got["ok"]
    assert delivery["id"] == f"{ok}.job.succeeded"
    assert delivery["body"]["type"] == "job.succeeded"
    assert delivery["body"]["data"]["job_id"] == ok
    assert delivery["body"]["data"]["status"] == "Succeeded"
    assert [d["body"]["type"] for d in receiver.got["late"]] == ["job.timed_out"]
    assert len(receiver.got["down3"]) == 4
    assert {d["id"] for d in receiver.got["down3"]} == {f"{down}.job.succeeded"}
    assert len(receiver.got["gone"]) == 1
    assert "410" in str(_delivered(gateway, gone)["notification"]["last_error"])

    # Cancelled: the webhook fires too.
    cancelled = gateway.submit("hook-cancel", callback_url=receiver.url("cancel")).body["job_id"]
    gateway.request("DELETE", f"/jobs/{cancelled}")
    assert _delivered(gateway, cancelled)["status"] == "Cancelled"
    assert [d["body"]["type"] for d in receiver.got["cancel"]] == ["job.cancelled"]


def test_a_delivery_survives_its_shard_owner_being_killed(
    notifying: tuple[Any, Receiver], cluster: Cluster
) -> None:
    release, receiver = notifying
    gateway, namespace = release.gateway, release.namespace
    job_id = gateway.submit("hook-takeover", callback_url=receiver.url("takeover")).body["job_id"]
    # The first attempt is answered 503: Pending, the next one due in a few seconds.
    wait_until(
        lambda: (gateway.job(job_id).body.get("notification") or {}).get("attempts") == 1,
        timeout=120,
        interval=0.5,
        what="the first attempt to be recorded",
    )
    owner = shard_holders(cluster, namespace)[shard_of(job_id, shards=SHARDS)]
    assert owner is not None
    killed_at = time.monotonic()
    assert kill_pod_processes(namespace, owner)
    cluster.force_delete_pod(namespace, owner)
    job = _delivered(gateway, job_id)
    took = time.monotonic() - killed_at
    assert job["notification"]["state"] == "Delivered"
    assert job["notification"]["attempts"] >= 2
    assert {d["id"] for d in receiver.got["takeover"]} == {f"{job_id}.job.succeeded"}
    print(f"\ndelivered {took:.1f}s after its shard owner was SIGKILLed (lease 15 s)")


def test_callbacks_to_internal_addresses_are_refused(notifying: tuple[Any, Receiver]) -> None:
    """The deployed gateway refuses them at submission; every refusal rule is in the unit table
    (tests/unit/test_callbacks.py): here one URL per kind proves the wiring."""
    release, _ = notifying
    cases = {
        "http://127.0.0.1:8080/x": "loopback",
        "http://169.254.169.254/latest/meta-data/": "link-local",
        "http://10.0.0.1/": "private",  # the Service range of the test bed
        "http://10.1.0.9/": "private",  # a pod address (not the allowed bridge)
        "gopher://example.com/": "http or https",
        "http://example.com/" + "x" * 2048: "2048",
    }
    answers = {url: release.gateway.submit("hook-ssrf", callback_url=url) for url in cases}
    wrong = {
        url[:60]: (answer.status, answer.body)
        for url, answer in answers.items()
        if answer.status != 422 or cases[url] not in json.dumps(answer.body)
    }
    assert not wrong, wrong


def test_a_failed_job_is_delivered_as_job_failed(
    deploy_release: DeployRelease, cluster: Cluster
) -> None:
    """A worker that cannot live in its memory limit is OOM-killed: with no retry, Failed."""
    if local_testbed_problem(cluster):
        pytest.skip("the receiver must be reachable from pods (the local test bed's bridge)")
    release = deploy_release(
        worker={
            "backoffLimit": 0,
            "resources": {"requests": {"memory": "6Mi"}, "limits": {"memory": "6Mi"}},
        },
        notifications={"allowedCIDRs": [f"{BRIDGE}/32"], "backoffSeconds": 4},
    )
    secret = cluster.core.read_namespaced_secret("reportjobs-webhook", release.namespace)
    receiver = Receiver(base64.b64decode(secret.data["secret"]).decode(), {})
    try:
        job_id = release.gateway.submit("hook-fail", callback_url=receiver.url("fail")).body[
            "job_id"
        ]
        job = wait_terminal(release.gateway, job_id, timeout=180)
        assert job["status"] == "Failed", job
        assert _delivered(release.gateway, job_id)["notification"]["state"] == "Delivered"
        assert [d["body"]["type"] for d in receiver.got["fail"]] == ["job.failed"]
    finally:
        receiver.close()
