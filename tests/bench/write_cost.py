#!/usr/bin/env python3
"""Benchmark: what one claim write and one ReportJob create cost the API server, side by side.

One client (aiohttp, C concurrent workers, the kubeconfig's credentials) makes, in alternating
rounds, in a namespace of its own that no operator or gateway watches (so nothing follows the
writes: no Job, no pod, no Event, no status):
- create: N ReportJob creates (bodies as the gateway builds them);
- replace: N replaces of ConfigMaps shaped like window shards (256 of them, 7 claims each: one
  claim replaced by a new one per write), each carrying the resourceVersion it read, one at a
  time per ConfigMap (so none conflicts).
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
from reportjobs_model.window import Claim, entry_key  # noqa: E402

SHARDS = 256
CLAIMS_PER_SHARD = 7


def claim(object_id: str, now: int) -> Claim:
    return Claim.new(object_id=object_id, now=now, window_seconds=300, timeout_seconds=60)


async def replaces(
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
    """`count` replaces, round robin over the shards, each on the version the previous returned."""
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
                shard = shards[name]
                data = dict(shard["data"])
                data.pop(next(iter(data)))
                data[entry_key(f"{tag}-{i}")] = claim(f"{tag}-{i}", now).to_entry()
                body = {**shard, "data": data}
                started = time.perf_counter()
                async with session.put(
                    f"{url}/{name}", json=body, headers=headers, ssl=ssl
                ) as answer:
                    written = await answer.json()
                    if answer.status != 200:
                        raise RuntimeError(f"replace of {name}: {answer.status} {written}")
                latencies.append(time.perf_counter() - started)
                statuses[answer.status] = statuses.get(answer.status, 0) + 1
                shards[name] = written

    return await measured(
        "shard replaces", worker, concurrency=concurrency, latencies=latencies, statuses=statuses
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
                "data": {entry_key(o): claim(o, now).to_entry() for o in ids},
            }
            async with s.post(url, json=body, headers=headers, ssl=connection.ssl) as answer:
                created = await answer.json()
                if answer.status != 201:
                    raise RuntimeError(f"create of a shard: {answer.status} {created}")
                shards[body["metadata"]["name"]] = created
        results: dict[str, list[Phase]] = {"create": [], "replace": []}
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
            phase = await replaces(
                shards,
                args.count,
                url=url,
                session=s,
                concurrency=args.concurrency,
                headers=headers,
                ssl=connection.ssl,
                tag=f"r-{run}-{round_}",
            )
            results["replace"].append(phase)
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
