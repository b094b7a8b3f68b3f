"""Dedup window arithmetic: time is cut into buckets of `window` seconds."""


def bucket_of(*, t: float, window: int) -> int:
    """The bucket that unix time `t` falls in: floor(t / window)."""
    if window < 1:
        raise ValueError(f"window must be >= 1 second, got {window}")
    return int(t // window)


def bucket_end(*, bucket: int, window: int) -> int:
    """First unix second that no longer belongs to `bucket`."""
    return (bucket + 1) * window


def is_late(*, created_unix: float, bucket: int, window: int) -> bool:
    """A ReportJob whose creation committed after its bucket ended is void."""
    return created_unix >= bucket_end(bucket=bucket, window=window)
