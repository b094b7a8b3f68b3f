"""The API server semantics the claim protocol relies on, on the real API server
(docs/design.md, "Why it is exact", L1): claims of two objects written on one read of their
shard both apply; a claim written on a read that is stale for its own object, or from before a
removal, is refused (422); a replace on a stale resourceVersion is refused (409), which is why
the claims are patches. Then through two gateways: distinct objects of one shard, at once, all
get their claims, by patches only."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from kubernetes import client

from reportjobs_model.window import (
    EPOCH_KEY,
    FIRST_EPOCH,
    Claim,
    claim_write,
    created_shard,
    entry_key,
    removal_write,
    shard_name,
)
from tests.e2e.conftest import DeployRelease
from tests.e2e.support.kube import Cluster

SHARD = shard_name("x")
OF_ONE_SHARD = [
    "x",
    "x1213",
    *(f"same-{i}" for i in range(4000) if shard_name(f"same-{i}") == SHARD),
]
"""Object ids whose claims live in one shard."""


def _entry(object_id: str, now: float = 1_700_000_000) -> str:
    claim = Claim.new(object_id=object_id, now=now, window_seconds=300, timeout_seconds=60)
    return claim.to_entry()


def _read(cluster: Cluster, namespace: str) -> dict[str, Any]:
    shard: dict[str, Any] = cluster.core.api_client.sanitize_for_serialization(
        cluster.core.read_namespaced_config_map(SHARD, namespace)
    )
    return shard


def _patched(cluster: Cluster, namespace: str, patch: list[dict[str, Any]] | None) -> int:
    """Apply a JSON patch (application/json-patch+json: the client's choice for a list);
    the HTTP status."""
    assert patch is not None
    try:
        cluster.core.patch_namespaced_config_map(SHARD, namespace, patch)
    except client.ApiException as error:
        return int(error.status)
    return 200


def test_claims_on_one_read_apply_unless_stale_for_their_object_or_a_removal(
    cluster: Cluster, namespace: str
) -> None:
    a, b, c = OF_ONE_SHARD[:3]
    cluster.core.create_namespaced_config_map(
        namespace, created_shard(name=SHARD, key=entry_key(a), entry=_entry(a))
    )
    read = _read(cluster, namespace)
    assert read["data"][EPOCH_KEY] == FIRST_EPOCH

    # Two other objects, both written on that one read: both apply.
    for object_id in (b, c):
        write = claim_write(read, key=entry_key(object_id), entry=_entry(object_id))
        assert _patched(cluster, namespace, write.patch) == 200
    assert set(_read(cluster, namespace)["data"]) == {
        entry_key(a),
        entry_key(b),
        entry_key(c),
        EPOCH_KEY,
    }

    # b again on the same read, which showed b absent: its test of b's entry fails.
    again = claim_write(read, key=entry_key(b), entry=_entry(b, now=1_700_000_400))
    assert _patched(cluster, namespace, again.patch) == 422
    # a's closed claim replaced, on the same read (a's entry unchanged): applies.
    newer = claim_write(read, key=entry_key(a), entry=_entry(a, now=1_700_000_400))
    assert _patched(cluster, namespace, newer.patch) == 200

    # A removal (the sweep's) on a fresh read gives the shard a new epoch: a claim written on
    # the read of before, of an object that read showed absent, is refused (no ABA).
    fresh = _read(cluster, namespace)
    removal = removal_write(fresh, keys=[entry_key(c)])
    assert _patched(cluster, namespace, removal.patch) == 200
    after = _read(cluster, namespace)
    assert after["data"][EPOCH_KEY] == fresh["metadata"]["resourceVersion"]
    assert entry_key(c) not in after["data"]
    late = claim_write(read, key=entry_key(OF_ONE_SHARD[3]), entry=_entry(OF_ONE_SHARD[3]))
    assert _patched(cluster, namespace, late.patch) == 422
    stale_removal = removal_write(fresh, keys=[entry_key(b)])
    assert _patched(cluster, namespace, stale_removal.patch) == 422

    # The replace that claims were before: a second one on one read is refused.
    first = {**after, "data": {**after["data"], "k1": "v"}}
    cluster.core.replace_namespaced_config_map(SHARD, namespace, first)
    with pytest.raises(client.ApiException) as refused:
        cluster.core.replace_namespaced_config_map(
            SHARD, namespace, {**after, "data": {**after["data"], "k2": "v"}}
        )
    assert refused.value.status == 409


def test_objects_of_one_shard_at_once_over_two_gateways_are_claimed_by_patches(
    deploy_release: DeployRelease, cluster: Cluster
) -> None:
    release = deploy_release(gateway={"replicas": 2})
    gateway, namespace = release.gateway, release.namespace
    objects = OF_ONE_SHARD[:12]
    pods = [pod.metadata.name for pod in cluster.ready_pods(namespace, "gateway")]
    assert len(pods) == 2

    def patches_and_replaces() -> list[float]:
        counts = [0.0, 0.0]
        for pod in pods:
            samples = cluster.metrics(namespace, pod, 8080)
            for index, verb in enumerate(("patch", "update")):
                counts[index] += sum(
                    value
                    for series, value in samples.items()
                    if series.startswith("reportjobs_api_requests_total{")
                    and f'verb="{verb}"' in series
                    and 'resource="configmaps"' in series
                )
        return counts

    before = patches_and_replaces()
    with ThreadPoolExecutor(max_workers=len(objects)) as pool:
        answers = list(pool.map(gateway.submit, objects))
    assert [a.status for a in answers] == [201] * len(objects), answers
    data = _read(cluster, namespace)["data"]
    assert set(data) == {entry_key(o) for o in objects} | {EPOCH_KEY}
    for object_id, answer in zip(objects, answers, strict=True):
        assert answer.body["job_id"] in data[entry_key(object_id)]
    patches, replaces = (now - was for now, was in zip(patches_and_replaces(), before, strict=True))
    # One of them created the shard (with its epoch), or more tried to; every other claim is a
    # patch, and no claim replaced the shard.
    assert patches >= len(objects) - 1, (patches, replaces)
    assert replaces == 0, (patches, replaces)
