"""Dedup windows as the window shards hold them (pure).

Every object id belongs to one of `SHARD_COUNT` window shards, ConfigMaps named by
`shard_name`, which are created on first use and never deleted. A shard's `data` maps the
object hash of each object with an open window to its claim: the object's newest job and when
it was accepted. It also holds the shard's epoch (`EPOCH_KEY`), which every removal of a claim
changes to a value it never had. A shard changes only by a create (it did not exist), by a
replace carrying the `resourceVersion` that was read, or by a JSON patch whose tests the API
server checks on the version it applies it to: the shard's uid, the epoch that was read and the
entry that was read under the key it writes (`claim_write`, `removal_write`). So the API server
orders every claim of an object, a write based on a version that is no longer current *for its
object* fails, and no removal can make a stale "absent" read true again (it changed the epoch,
or, by a writer of before the patches, removed it); writes of different objects of one shard no
longer conflict. The proof is in docs/design.md. A claim also names its object id, so that
anyone can create the job it names (the gateway answers 201 once the claim is written, and
creates the job right after). A closed claim is removed only once its job is known to exist,
accepted by its operator (a claim in a shard is the promise of its job), by the operator's
sweep, which also creates the job of any claim left without one. Entries are canonical
(`is_canonical`), so that the API server's byte-wise JSON-patch test of them matches.
"""

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from reportjobs_model import labels
from reportjobs_model.naming import job_name, object_hash
from reportjobs_model.timestamps import format_unix, unix_of

SHARD_COUNT: Final = 256
"""Fixed: changing it would move open windows to shards where nobody looks for them."""

SHARD_PREFIX: Final = "reportjobs-windows-"

EPOCH_KEY: Final = "epoch"
"""The key of a shard's epoch (never an object hash: those are hex digits): every write that
removes a claim gives it a value it never had, and every patch tests the value it read."""

Patch = list[dict[str, Any]]
"""A JSON patch (RFC 6902), as the API server applies it (application/json-patch+json)."""


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


_AS_GO_ESCAPES: Final = {ord(c): f"\\u{ord(c):04x}" for c in "&<>"}
"""JSON escapes for the printable ASCII characters that encoders disagree on: Go's
encoding/json writes `&`, `<` and `>` as `\\u0026`, `\\u003c` and `\\u003e`. (Python's
`json.dumps` already escapes everything outside printable ASCII, DEL included.)"""


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
        return json.dumps(fields, separators=(",", ":")).translate(_AS_GO_ESCAPES)


def is_canonical(entry: str) -> bool:
    """Whether every JSON encoder writes `entry`, as a string, the same way: it is printable
    ASCII without `&`, `<`, `>` (what `Claim.to_entry` writes).

    The API server applies a JSON patch to its own encoding of the object (Go's encoding/json,
    which escapes `&`, `<` and `>`, and writes non-ASCII as UTF-8), and compares a `test` value
    byte for byte with what the patch carries. An entry holding any other character could never
    be tested: a claim of its object could never be written again, nor the entry removed. The
    proof is in docs/design.md ("The entries' bytes") and tests/contract/."""
    return all(0x20 <= ord(c) < 0x7F and c not in "&<>" for c in entry)


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


def names_its_job(shard: Mapping[str, Any] | None, *, job_name: str) -> bool:
    """Whether the shard (as read) holds the claim that names `job_name`."""
    key = place_of_job(job_name)[1]
    data = (shard or {}).get("data") or {}
    claim = claim_of(data[key]) if key in data else None
    return claim is not None and claim.job_name == job_name


def _never(_: str) -> bool:
    return False


def awaits_its_job(claim: Claim, *, exists: Callable[[str], bool]) -> bool:
    """Whether a claim must stay until its job is created: it names its object (so its job may
    not exist yet), and `exists` does not know its job."""
    return claim.object_id is not None and not exists(claim.job_name)


def prunable(
    data: Mapping[str, str], *, now: float, exists: Callable[[str], bool] = _never
) -> list[str]:
    """The keys to remove at server time `now`: closed claims whose job is known to exist and
    accepted (`exists(job name)`; by default none is known), and unreadable entries. The epoch
    stays."""
    gone: list[str] = []
    for key, entry in data.items():
        if key == EPOCH_KEY:
            continue
        claim = claim_of(entry)
        if claim is None or not (claim.is_open(now=now) or awaits_its_job(claim, exists=exists)):
            gone.append(key)
    return gone


def build_window_shard(
    *, name: str, data: Mapping[str, str], resource_version: str | None = None
) -> dict[str, Any]:
    """A ConfigMap of claims; with the resourceVersion it replaces (None: a create)."""
    metadata: dict[str, object] = {
        "name": name,
        "labels": {labels.MANAGED_BY: labels.GATEWAY, labels.COMPONENT: labels.DEDUP_WINDOWS},
    }
    if resource_version is not None:
        metadata["resourceVersion"] = resource_version
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": dict(data)}


FIRST_EPOCH: Final = ""
"""The epoch a shard is created with: never a later one, which are resourceVersions (never
empty)."""


def created_shard(*, name: str, key: str, entry: str) -> dict[str, Any]:
    """A new shard holding one claim, and its first epoch."""
    return build_window_shard(name=name, data={key: entry, EPOCH_KEY: FIRST_EPOCH})


@dataclass(frozen=True, slots=True)
class ShardWrite:
    """How to write a shard that was read (or cached): a JSON `patch` when the read showed an
    epoch, else a `replacement` carrying the resourceVersion read (exactly one is set).

    A shard has no epoch when it was created by a writer of before the patches, or when one
    replaced it (it drops the entry it cannot read): then nothing a patch could test tells that
    no claim was removed since the read, and the write is a replace, which sets an epoch."""

    patch: Patch | None = None
    replacement: dict[str, Any] | None = None


def claim_write(shard: Mapping[str, Any], *, key: str, entry: str) -> ShardWrite:
    """Write `entry` under `key` in `shard` as it was read. As a patch, the API server applies it
    only if the shard is still that one (uid), no claim was removed from it since (epoch), and
    `key` still holds what was read (its closed claim, or nothing): other objects' writes in
    between do not matter to it. A replace when a patch could not test what was read (no epoch,
    or the entry under `key` is not canonical)."""
    data = shard.get("data") or {}
    if _untestable(data, keys=[key]):
        return _replacing(shard, {**data, key: entry})
    return ShardWrite(
        patch=[
            *_same_epoch(shard),
            _test(f"/data/{key}", data.get(key)),
            _add(f"/data/{key}", entry),
        ]
    )


def removal_write(shard: Mapping[str, Any], *, keys: list[str]) -> ShardWrite:
    """Remove the entries under `keys` from `shard` as it was read, and give it a new epoch. As
    a patch, applied only if the shard is still that one, its epoch unchanged, and each entry
    the one read. A replace when the shard has no epoch or holds any entry that is not
    canonical: so a shard written before the entries were canonical heals at its next sweep."""
    data = shard.get("data") or {}
    if _untestable(data, keys=list(data)):
        return _replacing(shard, {k: v for k, v in data.items() if k not in keys})
    patch = [*_same_epoch(shard), _add(f"/data/{EPOCH_KEY}", _version(shard))]
    for key in keys:
        patch += [_test(f"/data/{key}", data[key]), {"op": "remove", "path": f"/data/{key}"}]
    return ShardWrite(patch=patch)


def _untestable(data: Mapping[str, str], *, keys: list[str]) -> bool:
    """Whether a patch could not test what was read: the shard has no epoch, or an entry under
    one of `keys` is not canonical (the API server's test of it would never match)."""
    return EPOCH_KEY not in data or any(
        key != EPOCH_KEY and key in data and not is_canonical(data[key]) for key in keys
    )


def _replacing(shard: Mapping[str, Any], data: Mapping[str, str]) -> ShardWrite:
    """A replace of the version read, with a new epoch and every readable entry canonical."""
    name, version = str(shard["metadata"]["name"]), _version(shard)
    canonical = {key: _canonical(entry) for key, entry in data.items() if key != EPOCH_KEY}
    body = build_window_shard(
        name=name, data={**canonical, EPOCH_KEY: version}, resource_version=version
    )
    return ShardWrite(replacement=body)


def _canonical(entry: str) -> str:
    """The entry written canonically (an unreadable one as it is: the sweep removes it)."""
    if is_canonical(entry):
        return entry
    claim = claim_of(entry)
    return entry if claim is None else claim.to_entry()


def _version(shard: Mapping[str, Any]) -> str:
    """The resourceVersion read: a new epoch. No epoch ever repeats on a shard: each is the
    version of a read that the write setting it was based on (or FIRST_EPOCH, at its create),
    and two writes based on one read test (or replace) the same thing, so only one of them is
    applied."""
    return str(shard["metadata"]["resourceVersion"])


def _same_epoch(shard: Mapping[str, Any]) -> Patch:
    return [
        _test("/metadata/uid", shard["metadata"]["uid"]),
        _test(f"/data/{EPOCH_KEY}", shard["data"][EPOCH_KEY]),
    ]


def _test(path: str, value: object) -> dict[str, Any]:
    """Fails the whole patch unless `path` holds `value`; None: unless `path` is absent (the
    API server's JSON patch treats a null test value as "missing")."""
    return {"op": "test", "path": path, "value": value}


def _add(path: str, value: object) -> dict[str, Any]:
    """Sets `path` (adding the member, or replacing its value)."""
    return {"op": "add", "path": path, "value": value}
