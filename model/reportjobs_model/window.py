"""Dedup windows as the window shards hold them (pure).

Every object id belongs to one of `SHARD_COUNT` window shards, ConfigMaps named by
`shard_name`, which are created on first use and never deleted. A shard's `data` maps the
object hash of each object with an open window to its claim: the object's newest job and when
it was accepted. A shard changes only by a create (it did not exist) or by a replace carrying
the `resourceVersion` that was read, so the API server orders every claim of an object, and no
deletion can make a stale "absent" read true again; the proof is in docs/design.md.
A claim also names its object id, so that anyone can create the job it names (the gateway
answers 201 once the claim is written, and creates the job right after). A closed claim is
pruned only once its job is known to exist (a claim in a shard is the promise of its job): by
whoever writes the shard next, and by the operator's sweep, which also creates the job of any
claim left without one.
"""

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from reportjobs_model.naming import job_name, object_hash
from reportjobs_model.timestamps import format_unix, unix_of

SHARD_COUNT: Final = 256
"""Fixed: changing it would move open windows to shards where nobody looks for them."""

SHARD_PREFIX: Final = "reportjobs-windows-"


def shard_name(object_id: str) -> str:
    """The window shard of an object id: the first two hex digits of its hash."""
    return f"{SHARD_PREFIX}{object_hash(object_id)[:2]}"


def entry_key(object_id: str) -> str:
    """The key of an object's claim in its shard's data."""
    return object_hash(object_id)


def place_of_job(job_name: str) -> tuple[str, str]:
    """The shard and key of the claim that names a job (`naming.job_name`: its object hash)."""
    key = job_name.split("-")[1]
    return f"{SHARD_PREFIX}{key[:2]}", key


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """One job's hold on an object's window: from `accepted_at` for `window_seconds`."""

    job_name: str
    accepted_at: int
    window_seconds: int
    timeout_seconds: int
    object_id: str | None = None
    """None in claims written before claims named their object (their job was created before
    the submission was answered)."""
    callback_url: str | None = None
    """Where the operator POSTs the job's outcome (notifications)."""

    @classmethod
    def new(
        cls,
        *,
        object_id: str,
        now: float,
        window_seconds: int,
        timeout_seconds: int,
        callback_url: str | None = None,
    ) -> "Claim":
        """A claim accepted at server time `now` (whole seconds, as the Date header has)."""
        accepted_at = int(now)
        return cls(
            job_name=job_name(object_id=object_id, accepted_at=accepted_at),
            accepted_at=accepted_at,
            window_seconds=window_seconds,
            timeout_seconds=timeout_seconds,
            object_id=object_id,
            callback_url=callback_url,
        )

    def is_open(self, *, now: float) -> bool:
        """Whether a submission at server time `now` belongs to this job."""
        return now < self.accepted_at + self.window_seconds

    def to_entry(self) -> str:
        fields: dict[str, object] = {
            "job": self.job_name,
            "acceptedAt": format_unix(self.accepted_at),
            "windowSeconds": self.window_seconds,
            "timeoutSeconds": self.timeout_seconds,
        }
        if self.object_id is not None:
            fields["objectId"] = self.object_id
        if self.callback_url is not None:
            fields["callbackUrl"] = self.callback_url
        return json.dumps(fields, separators=(",", ":"))


def claim_of(entry: str) -> Claim | None:
    """The claim an entry holds; None when it cannot be read (it then counts as absent)."""
    try:
        fields = json.loads(entry)
        return Claim(
            job_name=str(fields["job"]),
            accepted_at=int(unix_of(str(fields["acceptedAt"]))),
            window_seconds=int(fields["windowSeconds"]),
            timeout_seconds=int(fields["timeoutSeconds"]),
            object_id=None if fields.get("objectId") is None else str(fields["objectId"]),
            callback_url=None if fields.get("callbackUrl") is None else str(fields["callbackUrl"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def open_claim(data: Mapping[str, str], *, key: str, now: float) -> Claim | None:
    """The claim under `key` if its window is open at server time `now`."""
    claim = claim_of(data[key]) if key in data else None
    return claim if claim is not None and claim.is_open(now=now) else None


def _never(_: str) -> bool:
    return False


def awaits_its_job(claim: Claim, *, exists: Callable[[str], bool]) -> bool:
    """Whether a claim must stay until its job is created: it names its object (so its job may
    not exist yet), and `exists` does not know its job."""
    return claim.object_id is not None and not exists(claim.job_name)


def pruned(
    data: Mapping[str, str], *, now: float, exists: Callable[[str], bool] = _never
) -> dict[str, str]:
    """The entries to keep at server time `now`: claims whose window is still open, and closed
    claims whose job is not known to exist (`exists(job name)`; by default none is known).
    Unreadable entries are dropped."""
    kept: dict[str, str] = {}
    for key, entry in data.items():
        claim = claim_of(entry)
        if claim is not None and (claim.is_open(now=now) or awaits_its_job(claim, exists=exists)):
            kept[key] = entry
    return kept
