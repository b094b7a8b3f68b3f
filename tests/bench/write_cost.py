#!/usr/bin/env python3
"""Benchmark: what one claim write and one ReportJob create cost the API server, side by side.

One client (aiohttp, C concurrent workers, the kubeconfig's credentials) makes, in alternating
rounds, in a namespace of its own that no operator or gateway watches (so nothing follows the
writes: no Job, no pod, no Event, no status):
- create: N ReportJob creates (bodies as the gateway builds them);
- replace: N replaces of ConfigMaps shaped like window shards (256 of them, 7 claims each: one
  claim replaced by a new one per write), each carrying the resourceVersion it read, one at a
  time per ConfigMap (so none conflicts): the claim write before the JSON patches;
- patch: N claim writes as the gateway makes them now (`window.claim_write`: a JSON patch that
  tests the shard's uid, its epoch and the entry it replaces), on the same ConfigMaps, one at a
  time per ConfigMap too (so each costs exactly one request).
It prints each phase's rate, p50, p99 and the CPU per request of the API server, etcd and the
rest, then deletes its namespace. It prints numbers and never fails on speed.

usage: write_cost.py [--kubeconfig .cluster/kubeconfig] [--count 1000] [--concurrency 16]
                     [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / d) for d in ("model", "kube")] + [str(Path(__file__).parent)]

from gateway_vs_raw import Phase, combined, drive, kubectl, measured, show  # noqa: E402

from reportjobs_kube import paths  # noqa: E402
from reportjobs_kube.config import from_kubeconfig  # noqa: E402
from reportjobs_model.reportjob import build_reportjob  # noqa: E402
from reportjobs_model.window import (  # noqa: E402
    EPOCH_KEY,
    FIRST_EPOCH,
    Claim,
    claim_write,
    entry_key,
)

SHARDS = 256
CLAIMS_PER_SHARD = 7


def claim(object_id: str, now: int) -> Claim:
    return Claim.new(object_id=object_id, now=now, window_seconds=300, timeout_seconds=60)


def replace_request(
    shard: dict[str, Any], object_id: str, now: int
) -> tuple[str, str, Any, dict[str, Any]]:
    """The claim before the patches: a replace of the version read, its oldest claim dropped
    and a new one added. Returns the method, content type, body and the shard to keep."""
    data = dict(shard["data"])
    data.pop(next(key for key in data if key != EPOCH_KEY))
    data[entry_key(object_id)] = claim(object_id, now).to_entry()
    return "PUT", "application/json", {**shard, "data": data}, {}


def patch_request(
    shard: dict[str, Any], object_id: str, now: int
) -> tuple[str, str, Any, dict[str, Any]]:
    """The claim now (`claim_write`), on the shard's oldest claim, which it replaces (so the
    shards keep their size); the returned hint moves that key last for the next write."""
    key = next(key for key in shard["data"] if key != EPOCH_KEY)
    write = claim_write(shard, key=key, entry=claim(object_id, now).to_entry())
    assert write.patch is not None
    return "PATCH", "application/json-patch+json", write.patch, {"last": key}


SHARD_WRITES = {"replace": replace_request, "patch": patch_request}


async def shard_writes(
    kind: str,
    shards: dict[str, dict[str, Any]],
    count: int,
    *,
    url: str,
    session: aiohttp.ClientSession,
    concurrency: int,
    headers: dict[str, str],
    ssl: Any,
    tag: str,
) -> Phase:
    """`count` claim writes of one kind, round robin over the shards, one at a time per shard,
    each on the version the previous returned (so none conflicts)."""
    names, queue = list(shards), list(range(count))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    turns = {name: asyncio.Lock() for name in names}
    now = int(time.time())

    async def worker() -> None:
        while queue:
            i = queue.pop()
            name = names[i % len(names)]
            async with turns[name]:
                method, kind_, body, hint = SHARD_WRITES[kind](shards[name], f"{tag}-{i}", now)
                started = time.perf_counter()
                async with session.request(
                    method,
                    f"{url}/{name}",
                    data=json.dumps(body),
                    headers={**headers, "content-type": kind_},
                    ssl=ssl,
                ) as answer:
                    written = await answer.json()
                    if answer.status != 200:
                        raise RuntimeError(f"{kind} of {name}: {answer.status} {written}")
                latencies.append(time.perf_counter() - started)
                statuses[answer.status] = statuses.get(answer.status, 0) + 1
                data = dict(written["data"])
                if "last" in hint:
                    data[hint["last"]] = data.pop(hint["last"])
                shards[name] = {**written, "data": data}

    return await measured(
        f"shard {kind}s", worker, concurrency=concurrency, latencies=latencies, statuses=statuses
    )


async def main_async(args: argparse.Namespace, namespace: str) -> None:
    connection = from_kubeconfig(Path(args.kubeconfig))
    auth = connection.credentials.authorization()
    headers = {"content-type": "application/json", **({"Authorization": auth} if auth else {})}
    run, now = uuid.uuid4().hex[:6], int(time.time())
    url = connection.server + paths.configmaps(namespace)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=2 * args.concurrency)
    ) as s:
        shards: dict[str, dict[str, Any]] = {}
        for i in range(SHARDS):
            ids = [f"seed-{run}-{i}-{k}" for k in range(CLAIMS_PER_SHARD)]
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"shard-{i:02x}"},
                "data": {
                    **{entry_key(o): claim(o, now).to_entry() for o in ids},
                    EPOCH_KEY: FIRST_EPOCH,
                },
            }
            async with s.post(url, json=body, headers=headers, ssl=connection.ssl) as answer:
                created = await answer.json()
                if answer.status != 201:
                    raise RuntimeError(f"create of a shard: {answer.status} {created}")
                shards[body["metadata"]["name"]] = created
        results: dict[str, list[Phase]] = {"create": [], "replace": [], "patch": []}
        for round_ in range(args.rounds):
            creates = []
            for i in range(args.count):
                object_id = f"c-{run}-{round_}-{i}"
                body = build_reportjob(object_id=object_id, claim=claim(object_id, now))
                creates.append(
                    (
                        "POST",
                        connection.server + paths.reportjobs(namespace),
                        json.dumps(body).encode(),
                        headers,
                    )
                )
            phase = await drive(
                "ReportJob creates",
                creates,
                session=s,
                concurrency=args.concurrency,
                ssl=connection.ssl,
            )
            results["create"].append(phase)
            show(phase)
            for kind in SHARD_WRITES:
                phase = await shard_writes(
                    kind,
                    shards,
                    args.count,
                    url=url,
                    session=s,
                    concurrency=args.concurrency,
                    headers=headers,
                    ssl=connection.ssl,
                    tag=f"{kind}-{run}-{round_}",
                )
                results[kind].append(phase)
                show(phase)
    print(f"\nall rounds, concurrency {args.concurrency}:")
    for kind, phases in results.items():
        show(combined(kind, phases))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kubeconfig", default=str(REPO / ".cluster" / "kubeconfig"))
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    namespace = f"write-cost-{uuid.uuid4().hex[:6]}"
    kubectl(args.kubeconfig, "create", "namespace", namespace)
    try:
        asyncio.run(main_async(args, namespace))
    finally:
        kubectl(args.kubeconfig, "delete", "namespace", namespace, "--wait=false")


if __name__ == "__main__":
    main()
