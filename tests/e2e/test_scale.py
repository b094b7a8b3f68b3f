"""The chart's defaults run 2 active operator replicas, each owning half the shards; when one
dies the other takes its shards once their Leases expire (each one handed over by expiry, as the
Lease history shows: the dead one released nothing), within two lease durations, and jobs keep
flowing."""

from __future__ import annotations

import time
from pathlib import Path

import yaml  # type: ignore[import-untyped]

from tests.e2e.conftest import DeployRelease
from tests.e2e.support.jobs import wait_terminal
from tests.e2e.support.kube import Cluster
from tests.e2e.support.leasehistory import LeaseHistory
from tests.e2e.support.polling import wait_until
from tests.e2e.support.shards import HolderLog, readyz, spread
from tests.e2e.support.testbed import kill_pod_processes, local_testbed_problem

CHART_VALUES = Path(__file__).resolve().parents[2] / "deploy/helm/reportjobs/values.yaml"
DEFAULTS = yaml.safe_load(CHART_VALUES.read_text())["operator"]
SHARDS = 16
LEASE_SECONDS = 15


def test_two_active_replicas_split_the_shards_and_one_takes_over_when_the_other_dies(
    deploy_release: DeployRelease, cluster: Cluster, figures: dict[str, object]
) -> None:
    assert (DEFAULTS["replicas"], DEFAULTS["shards"]) == (2, SHARDS)
    assert DEFAULTS["leaseDurationSeconds"] == LEASE_SECONDS
    # The test values set 1 replica (FAST_VALUES): back to the chart's defaults.
    release = deploy_release(operator={"replicas": DEFAULTS["replicas"]})
    gateway, namespace = release.gateway, release.namespace
    held = wait_until(
        lambda: spread(cluster, namespace, shards=SHARDS, replicas=2),
        timeout=120,
        what="2 operator replicas holding 8 shards each",
    )
    assert sorted(held.values()) == [8, 8], held
    for pod in held:
        samples = cluster.metrics(namespace, pod, 8080)
        assert samples["reportjobs_operator_shards_held"] == 8
        assert samples["reportjobs_operator_shards"] == SHARDS
        assert len(readyz(cluster, namespace, pod)["members"]) == 2  # type: ignore[arg-type]

    before = gateway.submit("before-takeover")
    assert wait_terminal(gateway, before.body["job_id"])["status"] == "Succeeded"

    victim, survivor = sorted(held)
    local = local_testbed_problem(cluster) is None
    with HolderLog(cluster, namespace) as log, LeaseHistory(cluster, namespace) as history:
        wait_until(lambda: bool(log.samples), timeout=30, what="the first lease sample")
        killed_at = time.monotonic()
        mine = log.held_by(victim, at=killed_at)
        assert len(mine) == 8, mine
        if local:  # SIGKILL: it dies without handing anything over
            assert kill_pod_processes(namespace, victim)
        cluster.force_delete_pod(namespace, victim)
        [takeover] = wait_until(  # the seconds, in a list: 0.0 would read as "not yet"
            lambda: [
                t for t in [log.taken_over(mine, from_pod=victim, after=killed_at)] if t is not None
            ],
            timeout=120,
            what=f"the shards of {victim} to be taken over",
        )
        after = gateway.submit("after-takeover")
        assert after.status == 201
        assert wait_terminal(gateway, after.body["job_id"])["status"] == "Succeeded"
    handed = [h for h in history.handovers() if h.from_pod == victim]
    by_expiry = {h.shard for h in handed if not h.released}
    how = "SIGKILLed" if local else "force-deleted (SIGTERM: it may hand over)"
    print(
        f"\noperator {how}: its {len(mine)} shards taken over in {takeover:.1f}s (lease 15s); "
        f"Lease history: {len(handed)} handovers from it, {len(by_expiry)} by expiry"
    )
    figures.update(
        shards_of_the_dead=len(mine),
        takeover_seconds=round(takeover, 1),
        handovers_by_expiry=len(by_expiry),
        handovers=len(handed),
    )
    assert {h.shard for h in handed} >= mine, handed  # each of its shards moved to another pod
    assert history.unseen_takes() == {}, history.unseen_takes()  # the watch saw every take
    # A latency that is the property, bounded by the Lease protocol, not by Kubernetes: the API
    # server never expires a Lease. Each replica judges another's Lease expired once it has seen
    # it unchanged for leaseDurationSeconds (15 s; client-go's leader-election rule, in
    # operator/reportjobs_operator/leases.py), on its rounds every duration/5 (3 s). The dead
    # one renewed at most a round before it died, and the survivor takes orphaned shards over
    # its fair share (membership.plan): every shard is taken within a duration and two rounds.
    assert takeover <= 2 * LEASE_SECONDS, (
        f"takeover {takeover:.1f}s: longer than two lease durations ({2 * LEASE_SECONDS}s)"
    )
    if local:
        # SIGKILL: it released nothing, so each shard was taken once its Lease expired: by
        # expiry in the Lease history, and no sooner than 2/3 of a lease after the kill (a whole
        # duration after its last renewal, which was at most a round before the kill).
        assert by_expiry >= mine, (by_expiry, mine)
        assert takeover >= LEASE_SECONDS * 2 / 3, takeover
    # The replacement pod joins; the two split the shards again.
    wait_until(
        lambda: spread(cluster, namespace, shards=SHARDS, replicas=2),
        timeout=180,
        what="the shards to be split again with the replacement pod",
    )
    assert survivor in {p.metadata.name for p in cluster.pods(namespace, "operator")}
