"""Names derived from what a user submitted."""

import hashlib
import re
from typing import Final

HASH_LENGTH: Final = 24
JOB_NAME_PATTERN: Final = re.compile(r"^rj-[0-9a-f]{24}-(0|[1-9][0-9]*)$")


def object_hash(object_id: str) -> str:
    """First 24 hex digits of the SHA-256 of the UTF-8 encoded object id."""
    return hashlib.sha256(object_id.encode("utf-8")).hexdigest()[:HASH_LENGTH]


def job_name(*, object_id: str, accepted_at: int) -> str:
    """Name of the ReportJob (and of its batch Job): this is also the public job id.

    `accepted_at` is the unix second its window began; an object's jobs are at least a window
    apart, so the name is unique."""
    return f"rj-{object_hash(object_id)}-{accepted_at}"


def is_job_name(name: str) -> bool:
    """Whether a string has the shape of a job name (a cheap check before any lookup)."""
    return JOB_NAME_PATTERN.fullmatch(name) is not None
