"""Naming, window arithmetic, phases and timestamps of reportjobs_model."""

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from reportjobs_model import crd, labels
from reportjobs_model.naming import is_job_name, job_name, object_hash
from reportjobs_model.phase import Phase
from reportjobs_model.reportjob import created_unix, is_void
from reportjobs_model.timestamps import format_rfc3339, normalize_rfc3339, parse_rfc3339, unix_of
from reportjobs_model.window import bucket_end, bucket_of, is_late
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
    assert job_name(object_id="abc", bucket=5_000_000) == "rj-ba7816bf8f01cfea414140de-5000000"
    name = job_name(object_id="📄" * 256, bucket=6_000_000)
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


@pytest.mark.parametrize(
    ("t", "window", "bucket"),
    [
        (0, 300, 0),
        (299, 300, 0),
        (299.999, 300, 0),
        (300, 300, 1),
        (1_700_000_000, 300, 5_666_666),
        (1_700_000_100, 300, 5_666_667),
        (7, 1, 7),
    ],
)
def test_bucket_of(t: float, window: int, bucket: int) -> None:
    assert bucket_of(t=t, window=window) == bucket


def test_bucket_of_rejects_empty_window() -> None:
    with pytest.raises(ValueError, match="window"):
        bucket_of(t=10, window=0)


def test_bucket_end() -> None:
    assert bucket_end(bucket=3, window=300) == 1200


@pytest.mark.parametrize(
    ("created", "late"),
    [(900, False), (1199, False), (1199.999, False), (1200, True), (1500, True)],
)
def test_is_late_at_the_bucket_end(created: float, late: bool) -> None:
    assert is_late(created_unix=created, bucket=3, window=300) is late


def test_is_void_reads_the_objects_own_window() -> None:
    on_time = reportjob(created=5 * 300 + 299, bucket=5, window=300)
    late = reportjob(created=6 * 300, bucket=5, window=300)
    other_window = reportjob(created=6 * 300, bucket=3, window=600)
    assert not is_void(on_time)
    assert is_void(late)
    assert not is_void(other_window)
    assert created_unix(on_time) == 5 * 300 + 299


def test_phase_values_and_terminality() -> None:
    assert [p.value for p in Phase] == ["Pending", "Running", "Succeeded", "Failed", "TimedOut"]
    assert [p for p in Phase if p.is_terminal] == [Phase.SUCCEEDED, Phase.FAILED, Phase.TIMED_OUT]
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
