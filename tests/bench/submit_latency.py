#!/usr/bin/env python3
"""Benchmark: submission latency of the deployed gateway (`make up` first). Prints numbers;
asserts nothing about speed. New submissions and deduplicated ones are measured separately,
and reported as ratios too, since absolute timings on a shared machine mean little.

usage: submit_latency.py [--url http://127.0.0.1:30080] [--count 20] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor


def submit(url: str, object_id: str) -> tuple[int, float]:
    request = urllib.request.Request(
        f"{url}/jobs",
        data=json.dumps({"object_id": object_id}).encode(),
        method="POST",
        headers={"content-type": "application/json"},
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
        return response.status, time.perf_counter() - started


def summary(name: str, samples: list[float]) -> float:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    print(
        f"{name:>14}: n={len(ordered)} p50={p50 * 1000:.1f} ms p95={p95 * 1000:.1f} ms "
        f"max={ordered[-1] * 1000:.1f} ms"
    )
    return p50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:30080")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    run = uuid.uuid4().hex[:8]
    ids = [f"bench-{run}-{i}" for i in range(args.count)]
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        new = list(pool.map(lambda i: submit(args.url, i), ids))
        dup = list(pool.map(lambda i: submit(args.url, i), ids))
    assert {status for status, _ in new} == {201}, "every first submission creates a job"
    assert {status for status, _ in dup} == {200}, "every second submission is deduplicated"
    new_p50 = summary("new job", [t for _, t in new])
    dup_p50 = summary("deduplicated", [t for _, t in dup])
    print(f"{'ratio':>14}: deduplicated/new p50 = {dup_p50 / new_p50:.2f}")


if __name__ == "__main__":
    main()
