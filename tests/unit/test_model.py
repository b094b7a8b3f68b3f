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
    SHARD_COUNT,
    Claim,
    claim_of,
    entry_key,
    open_claim,
    pruned,
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
    data = {"a": old.to_entry(), "b": new.to_entry(), "junk": "?"}
    assert open_claim(data, key="a", now=109) == old
    assert open_claim(data, key="a", now=110) is None
    assert open_claim(data, key="missing", now=100) is None
    assert open_claim(data, key="junk", now=100) is None
    # A closed claim stays until its job is known to exist (its 201 may precede the job).
    assert pruned(data, now=110) == {"a": old.to_entry(), "b": new.to_entry()}
    exists = {old.job_name, new.job_name}.__contains__
    assert pruned(data, now=110, exists=exists) == {"b": new.to_entry()}
    assert pruned(data, now=115, exists=exists) == {}
    legacy = Claim(job_name=old.job_name, accepted_at=100, window_seconds=10, timeout_seconds=1)
    assert pruned({"a": legacy.to_entry()}, now=110) == {}  # named no object: its job exists


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
