"""Object ids and callback URLs of adversarial characters through a job's whole life, on a
short-window release (issue #20, deliverable 4): submit (201), dedup (200, the same job), the
claim written canonically in its window shard, a claim again after the window (201, a new job:
the gateway's JSON-patch `test` of the closed entry matches on the API server), both jobs run
to Succeeded, their webhooks delivered to the URL as given, GET and list by object_id, and the
operator's sweep pruning the closed claims from their shards.

Before the claims were canonical, an entry holding `&`, `<` or `>` never matched the API
server's byte-for-byte `test` (Go's encoding escapes them): such an object answered 503 after
its window, and its shard was never pruned.

The operator is scaled to 0 once it has accepted the first jobs (a claim is replaced or pruned
only once its job is accepted) and before their windows close: no sweep can then prune a closed
claim before its object is submitted again, so every renewal meets its closed entry (the case
that broke), never an empty key. The operator is back for the jobs' runs and the sweep."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest

from reportjobs_model.window import claim_of, entry_key, is_canonical, shard_name
from tests.e2e.conftest import DeployRelease
from tests.e2e.support.gateway import Answer, Gateway
from tests.e2e.support.kube import Cluster
from tests.e2e.support.polling import wait_until
from tests.e2e.support.release import Release, scale_operator
from tests.e2e.support.testbed import local_testbed_problem
from tests.e2e.test_notifications import BRIDGE, Receiver

WINDOW = 15
RESYNC = 2


def _max_length_id() -> str:
    """256 characters (code points) cycling through every class."""
    classes = '&<>"\\/é中文📄\x01\n\t\b\x7fa-'
    text = (classes * (256 // len(classes) + 1))[:256]
    assert len(text) == 256
    return text


# (object id, path and query of the callback URL on the receiver)
CASES: list[tuple[str, str]] = [
    ('markup & <tag> "quoted" back\\slash /path/', "amp?a=1&b=2"),
    ("rapport é 中文 №7", "lt?q=<tag>&r=a%26b&s=>"),
    ("emoji 📄🧾 👩\u200d💻 🏳️\u200d🌈", "raw?q=é中文&e=📄&amp=&"),
    ("ctl \x01 nl\n tab\t bs\b del\x7f end", "pct?q=%C3%A9%E4%B8%AD%E6%96%87&x=%26%3C%3E"),
    (_max_length_id(), "mixed?a=<&b=>&c=é&d=%26&e=\"'"),
    ("plain-object-callback-only", "plain?x=1&y=<2>&z=3"),
]


@pytest.fixture
def adversarial(
    deploy_release: DeployRelease, cluster: Cluster
) -> Iterator[tuple[Release, Receiver]]:
    problem = local_testbed_problem(cluster)
    if problem:
        pytest.skip(f"the webhook receiver must be reachable from pods: {problem}")
    release = deploy_release(
        dedup={"windowSeconds": WINDOW},
        operator={"replicas": 1, "resyncSeconds": RESYNC},
        job={"sleepMinSeconds": 1, "sleepMaxSeconds": 2},
        notifications={"allowedCIDRs": [f"{BRIDGE}/32"], "backoffSeconds": 4},
    )
    secret = cluster.core.read_namespaced_secret("reportjobs-webhook", release.namespace)
    receiver = Receiver(base64.b64decode(secret.data["secret"]).decode(), {})
    yield release, receiver
    receiver.close()


def _entry(cluster: Cluster, namespace: str, object_id: str) -> str | None:
    """The entry under the object's key in its window shard (None: no entry, or no shard)."""
    data = cluster.core.read_namespaced_config_map(shard_name(object_id), namespace).data
    return (data or {}).get(entry_key(object_id))


def _settled(gateway: Gateway, job_id: str) -> dict[str, Any]:
    """The job once it is terminal and its notification settled, read with `?wait=`."""

    def done() -> dict[str, Any] | None:
        answer = gateway.request("GET", f"/jobs/{job_id}?wait=20")
        body: dict[str, Any] = answer.body
        notified = (body.get("notification") or {}).get("state") in ("Delivered", "Failed")
        terminal = body.get("status") not in (None, "Pending", "Running")
        return body if answer.status == 200 and terminal and notified else None

    return wait_until(done, timeout=240, interval=0.5, what=f"job {job_id} to end and notify")


def test_adversarial_object_ids_and_callbacks_live_a_whole_life(
    adversarial: tuple[Release, Receiver], cluster: Cluster
) -> None:
    release, receiver = adversarial
    gateway, namespace = release.gateway, release.namespace
    urls = {object_id: receiver.url(tail) for object_id, tail in CASES}
    answers: list[Answer] = []

    def submit(object_id: str, **extra: Any) -> Answer:
        answer = gateway.submit(object_id, **extra)
        answers.append(answer)
        return answer

    started = time.monotonic()

    # Submit: 201, the job as given.
    first: dict[str, str] = {}
    for object_id, url in urls.items():
        answer = submit(object_id, callback_url=url)
        assert answer.status == 201, (object_id, answer.body)
        assert (answer.body["object_id"], answer.body["callback_url"]) == (object_id, url)
        first[object_id] = answer.body["job_id"]
    assert len(set(first.values())) == len(CASES)

    # Dedup inside the window: 200, the same job, with the callback it was created with.
    for object_id, url in urls.items():
        answer = submit(object_id)
        assert answer.status == 200, (object_id, answer.body)
        assert answer.body["job_id"] == first[object_id]
        assert (answer.body["object_id"], answer.body["callback_url"]) == (object_id, url)

    # Each claim is in its shard, written canonically, and reads back as submitted.
    for object_id, url in urls.items():
        entry = _entry(cluster, namespace, object_id)
        assert entry is not None, object_id
        assert is_canonical(entry), entry
        claim = claim_of(entry)
        assert claim is not None, entry
        assert (claim.job_name, claim.object_id, claim.callback_url) == (
            first[object_id],
            object_id,
            url,
        )

    # Stop the sweep before the windows close, once the operator has accepted every job (has
    # given it a status phase): only then may its claim be replaced.
    def accepted() -> bool:
        return all(
            "phase" in ((cluster.reportjob(namespace, job_id) or {}).get("status") or {})
            for job_id in first.values()
        )

    wait_until(accepted, timeout=WINDOW, interval=0.2, what="the operator to accept the jobs")
    scale_operator(cluster, namespace, 0)
    stopped_at = time.monotonic() - started

    # After the window: a new claim over the closed entry (nothing pruned it: no operator runs).
    second: dict[str, str] = {}
    wrong: list[tuple[str, Any]] = []
    for object_id, url in urls.items():
        closed = claim_of(_entry(cluster, namespace, object_id) or "")
        assert closed is not None, f"{object_id!r}: pruned before the operator stopped"
        assert closed.job_name == first[object_id], object_id

        def renewed(object_id: str = object_id, url: str = url) -> Answer | None:
            answer = submit(object_id, callback_url=url)
            if answer.status == 200 and answer.body["job_id"] != first[object_id]:
                wrong.append((object_id, answer.body))
            return answer if answer.status not in (200, 503) else None

        answer = wait_until(
            renewed, timeout=WINDOW + 60, interval=1, what=f"a new job of {object_id!r}"
        )
        assert answer.status == 201, (object_id, answer.status, answer.body)
        assert answer.body["job_id"] != first[object_id]
        assert answer.body["created_at"] > gateway.job(first[object_id]).body["created_at"]
        second[object_id] = answer.body["job_id"]
        claim = claim_of(_entry(cluster, namespace, object_id) or "")
        assert claim is not None, object_id
        assert claim.job_name == second[object_id], object_id
    assert wrong == [], "a 200 inside the window named another job"
    renewed_at = time.monotonic() - started

    # The operator back: every job runs to Succeeded, and its webhook is delivered once.
    scale_operator(cluster, namespace, 1)
    jobs = {
        job_id: object_id for object_id in urls for job_id in (first[object_id], second[object_id])
    }
    for job_id, object_id in jobs.items():
        body = _settled(gateway, job_id)
        assert body["status"] == "Succeeded", body
        assert (body["object_id"], body["callback_url"]) == (object_id, urls[object_id])
        assert body["notification"]["state"] == "Delivered", body
        assert body["notification"]["attempts"] == 1, body
    ran_at = time.monotonic() - started

    assert receiver.bad == []
    deliveries = {
        delivery["id"]: (path, delivery["body"])
        for path, got in receiver.got.items()
        for delivery in got
    }
    assert sum(len(got) for got in receiver.got.values()) == len(jobs)
    assert set(deliveries) == {f"{job_id}.job.succeeded" for job_id in jobs}
    for job_id, object_id in jobs.items():
        path, body = deliveries[f"{job_id}.job.succeeded"]
        assert body["type"] == "job.succeeded"
        assert (body["data"]["job_id"], body["data"]["object_id"]) == (job_id, object_id)
        assert body["data"]["status"] == "Succeeded"
        # Delivered to the URL as given (characters a client must encode, percent-encoded).
        given = urlsplit(urls[object_id])
        assert unquote(path) == unquote(f"{given.path.strip('/')}?{given.query}"), (path, given)

    # GET and list by object_id: both jobs, newest first.
    for object_id in urls:
        listed = gateway.request("GET", f"/jobs?object_id={quote(object_id, safe='')}")
        assert listed.status == 200, (object_id, listed.body)
        assert [item["job_id"] for item in listed.body["items"]] == [
            second[object_id],
            first[object_id],
        ]
        assert {item["object_id"] for item in listed.body["items"]} == {object_id}

    # After the second windows, the sweep prunes every closed claim from its shard.
    def pruned() -> bool:
        return all(_entry(cluster, namespace, object_id) is None for object_id in urls)

    wait_until(pruned, timeout=WINDOW + 90, interval=1, what="the closed claims to be pruned")
    pruned_at = time.monotonic() - started

    statuses = [answer.status for answer in answers]
    assert set(statuses) <= {200, 201}, statuses
    assert statuses.count(201) == 2 * len(CASES)
    print(
        f"\n{len(CASES)} objects, {len(answers)} submissions "
        f"({statuses.count(201)} x 201, {statuses.count(200)} x 200); operator stopped after "
        f"{stopped_at:.1f}s, renewed after "
        f"{renewed_at:.1f}s, {len(jobs)} jobs succeeded and delivered after {ran_at:.1f}s, "
        f"claims pruned after {pruned_at:.1f}s"
    )
