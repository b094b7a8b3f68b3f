"""Naming, window arithmetic, phases and timestamps of reportjobs_model."""

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from reportjobs_model import crd, labels
from reportjobs_model.naming import is_job_name, job_name, object_hash
from reportjobs_model.phase import Phase
from reportjobs_model.reportjob import accepted_unix, window_end_unix
from reportjobs_model.timestamps import (
    format_rfc3339,
    format_unix,
    normalize_rfc3339,
    parse_rfc3339,
    unix_of,
    unix_of_http_date,
)
from reportjobs_model.window import (
    EPOCH_KEY,
    SHARD_COUNT,
    Claim,
    claim_of,
    claim_write,
    entry_key,
    open_claim,
    prunable,
    removal_write,
    shard_name,
)
from tests.unit.fakes import reportjob, stamp


def test_crd_coordinates() -> None:
    assert (crd.GROUP, crd.VERSION, crd.KIND, crd.PLURAL) == (
        "reportjobs.io",
        "v1alpha1",
        "ReportJob",
        "reportjobs",
    )
    assert crd.API_VERSION == "reportjobs.io/v1alpha1"
    assert labels.OBJECT_HASH == "reportjobs.io/object-hash"
    assert labels.MANAGED_BY == "app.kubernetes.io/managed-by"


def test_object_hash_is_24_hex_of_sha256() -> None:
    assert object_hash("abc") == "ba7816bf8f01cfea414140de"
    assert object_hash("ü") == hashlib.sha256("ü".encode()).hexdigest()[:24]
    assert object_hash("a") != object_hash("A")


def test_job_name() -> None:
    assert job_name(object_id="abc", accepted_at=1_700_000_000) == (
        "rj-ba7816bf8f01cfea414140de-1700000000"
    )
    name = job_name(object_id="📄" * 256, accepted_at=99_999_999_999)
    assert len(name) <= 63
    assert is_job_name(name)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("rj-ba7816bf8f01cfea414140de-0", True),
        ("rj-ba7816bf8f01cfea414140de-17", True),
        ("rj-ba7816bf8f01cfea414140de-017", False),
        ("rj-BA7816BF8F01CFEA414140DE-1", False),
        ("rj-ba7816bf8f01cfea414140d-1", False),
        ("rj-ba7816bf8f01cfea414140de-", False),
        ("nope", False),
        ("rj-ba7816bf8f01cfea414140de-1\n", False),
    ],
)
def test_is_job_name(name: str, valid: bool) -> None:
    assert is_job_name(name) is valid


def test_shards() -> None:
    assert shard_name("abc") == "reportjobs-windows-ba"
    assert entry_key("abc") == "ba7816bf8f01cfea414140de"
    names = {shard_name(f"object-{i}") for i in range(5000)}
    assert len(names) == SHARD_COUNT == 256, "the first two hex digits: every shard is used"
    assert {"reportjobs-windows-00", "reportjobs-windows-ff"} <= names


def test_claim_window_is_half_open() -> None:
    claim = Claim.new(object_id="abc", now=1000.9, window_seconds=300, timeout_seconds=60)
    assert claim.job_name == "rj-ba7816bf8f01cfea414140de-1000"
    assert claim.accepted_at == 1000
    assert claim.is_open(now=1000)
    assert claim.is_open(now=1299.99)
    assert not claim.is_open(now=1300)


def test_claim_entry_round_trip() -> None:
    claim = Claim.new(object_id="abc", now=1_700_000_000, window_seconds=30, timeout_seconds=7)
    assert claim_of(claim.to_entry()) == claim
    assert claim.to_entry() == (
        '{"job":"rj-ba7816bf8f01cfea414140de-1700000000","acceptedAt":"2023-11-14T22:13:20Z",'
        '"windowSeconds":30,"timeoutSeconds":7,"objectId":"abc"}'
    )


@pytest.mark.parametrize("entry", ["", "{", "[]", '{"job": "x"}', '{"job":"x","acceptedAt":"no"}'])
def test_unreadable_entries_are_no_claim(entry: str) -> None:
    assert claim_of(entry) is None


def test_open_claim_and_pruning() -> None:
    old = Claim.new(object_id="a", now=100, window_seconds=10, timeout_seconds=1)
    new = Claim.new(object_id="b", now=105, window_seconds=10, timeout_seconds=1)
    data = {"a": old.to_entry(), "b": new.to_entry(), "junk": "?", EPOCH_KEY: "3"}
    assert open_claim(data, key="a", now=109) == old
    assert open_claim(data, key="a", now=110) is None
    assert open_claim(data, key="missing", now=100) is None
    assert open_claim(data, key="junk", now=100) is None
    assert open_claim(data, key=EPOCH_KEY, now=100) is None
    # A closed claim stays until its job is known to exist (its 201 may precede the job); the
    # epoch always stays, unreadable entries go.
    assert prunable(data, now=110) == ["junk"]
    exists = {old.job_name, new.job_name}.__contains__
    assert prunable(data, now=110, exists=exists) == ["a", "junk"]
    assert prunable(data, now=115, exists=exists) == ["a", "b", "junk"]
    legacy = Claim(job_name=old.job_name, accepted_at=100, window_seconds=10, timeout_seconds=1)
    assert prunable({"a": legacy.to_entry()}, now=110) == ["a"]  # named no object: job exists


def test_the_epoch_is_never_an_object_key() -> None:
    assert set(EPOCH_KEY) - set("0123456789abcdef")
    assert len(entry_key("x")) != len(EPOCH_KEY)


def _shard(data: dict[str, str]) -> dict[str, object]:
    return {"metadata": {"name": "s", "uid": "u-1", "resourceVersion": "9"}, "data": data}


def test_a_claim_patch_tests_the_shard_its_epoch_and_its_own_entry_only() -> None:
    entry = '{"job":"rj-new"}'
    write = claim_write(_shard({"k": "old", "other": "o", EPOCH_KEY: "2"}), key="k", entry=entry)
    assert write.replacement is None
    assert write.patch == [
        {"op": "test", "path": "/metadata/uid", "value": "u-1"},
        {"op": "test", "path": "/data/epoch", "value": "2"},
        {"op": "test", "path": "/data/k", "value": "old"},
        {"op": "add", "path": "/data/k", "value": entry},
    ]
    # Nothing read under the key: tested absent (a null test value).
    new = claim_write(_shard({"other": "o", EPOCH_KEY: ""}), key="k", entry=entry)
    assert new.patch is not None
    assert new.patch[1:3] == [
        {"op": "test", "path": "/data/epoch", "value": ""},
        {"op": "test", "path": "/data/k", "value": None},
    ]


def test_without_an_epoch_a_write_replaces_the_version_read_and_sets_one() -> None:
    """A shard of a writer of before the patches: nothing tells a patch that no claim was
    removed since the read, so the write is a replace, and the read's version is the epoch."""
    write = claim_write(_shard({"other": "o"}), key="k", entry="e")
    assert write.patch is None
    assert write.replacement is not None
    assert write.replacement["metadata"]["resourceVersion"] == "9"
    assert write.replacement["data"] == {"other": "o", "k": "e", EPOCH_KEY: "9"}
    assert write.replacement["metadata"]["labels"]  # what the informers select by
    pruned = removal_write(_shard({"a": "A", "b": "B"}), keys=["a"])
    assert pruned.replacement is not None
    assert pruned.replacement["data"] == {"b": "B", EPOCH_KEY: "9"}


def test_a_removal_patch_gives_a_new_epoch_and_tests_what_it_removes() -> None:
    write = removal_write(_shard({"a": "A", "b": "B", EPOCH_KEY: "4"}), keys=["a"])
    assert write.patch == [
        {"op": "test", "path": "/metadata/uid", "value": "u-1"},
        {"op": "test", "path": "/data/epoch", "value": "4"},
        {"op": "add", "path": "/data/epoch", "value": "9"},
        {"op": "test", "path": "/data/a", "value": "A"},
        {"op": "remove", "path": "/data/a"},
    ]


def test_reportjob_window() -> None:
    rj = reportjob(created=1_700_000_000, window=300)
    assert accepted_unix(rj) == 1_700_000_000
    assert window_end_unix(rj) == 1_700_000_300


def test_http_date_and_unix_formatting() -> None:
    assert unix_of_http_date("Tue, 14 Nov 2023 22:13:20 GMT") == 1_700_000_000
    assert format_unix(1_700_000_000.9) == "2023-11-14T22:13:20Z"


def test_phase_values_and_terminality() -> None:
    assert [p.value for p in Phase] == [
        "Pending",
        "Running",
        "Succeeded",
        "Failed",
        "TimedOut",
        "Cancelled",
    ]
    assert [p for p in Phase if p.is_terminal] == [
        Phase.SUCCEEDED,
        Phase.FAILED,
        Phase.TIMED_OUT,
        Phase.CANCELLED,
    ]
    assert Phase("TimedOut") is Phase.TIMED_OUT
    assert Phase.RUNNING == "Running"


def test_rfc3339_round_trip() -> None:
    moment = datetime(2024, 5, 1, 12, 30, 15, 999_000, tzinfo=UTC)
    assert format_rfc3339(moment) == "2024-05-01T12:30:15Z"
    assert format_rfc3339(datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))) == (
        "2024-05-01T12:00:00Z"
    )
    assert parse_rfc3339("2024-05-01T12:30:15Z") == moment.replace(microsecond=0)
    assert normalize_rfc3339("2024-05-01T12:30:15+00:00") == "2024-05-01T12:30:15Z"
    assert normalize_rfc3339(None) is None
    assert unix_of(stamp(1_700_000_000)) == 1_700_000_000


def test_rfc3339_needs_a_zone() -> None:
    with pytest.raises(ValueError, match="time zone"):
        parse_rfc3339("2024-05-01T12:30:15")
