"""Which shard a ReportJob belongs to: a stable hash of its name, fixed when it is built.

Every ReportJob carries the label `reportjobs.io/bucket`: one of BUCKETS values, from the
SHA-256 of its name. Shard s of K holds the buckets b with b % K == s, so the label never
depends on K (the gateway needs no shard count, and a ReportJob's label never changes), and a
replica's watches select their shards on the server: `reportjobs.io/bucket in (s, s+K, ...)`.
The operator's Jobs and worker pods carry the same label as their ReportJob.
"""

import hashlib
from typing import Final

from reportjobs_model import labels

BUCKETS: Final = 256
"""Label values; a shard count K from 1 to BUCKETS splits them evenly within one bucket."""


def bucket_of(name: str) -> int:
    """The bucket of a ReportJob's name (the first byte of the SHA-256 of its UTF-8)."""
    return hashlib.sha256(name.encode("utf-8")).digest()[0] % BUCKETS


def shard_of_bucket(bucket: int, *, shards: int) -> int:
    return bucket % shards


def shard_of(name: str, *, shards: int) -> int:
    """The shard of a ReportJob (of its Job, and of its pods) by its name."""
    return shard_of_bucket(bucket_of(name), shards=shards)


def shard_of_labels(object_labels: dict[str, str] | None, *, shards: int) -> int | None:
    """The shard an object's bucket label names; None without a valid label."""
    value = (object_labels or {}).get(labels.BUCKET)
    if value is None or not value.isdigit() or int(value) >= BUCKETS:
        return None
    return shard_of_bucket(int(value), shards=shards)


def buckets_of(shard: int, *, shards: int) -> list[int]:
    return list(range(shard, BUCKETS, shards))


def selector_of(shard: int, *, shards: int) -> str:
    """The label selector of one shard's objects."""
    values = ",".join(str(bucket) for bucket in buckets_of(shard, shards=shards))
    return f"{labels.BUCKET} in ({values})"
