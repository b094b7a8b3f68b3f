"""RFC 3339 timestamps as Kubernetes writes them: UTC, whole seconds, trailing `Z`."""

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def format_rfc3339(moment: datetime) -> str:
    """`2024-05-01T12:00:00Z`; a naive datetime is taken to be UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_unix(unix: float) -> str:
    """`format_rfc3339` of a unix time (fractions dropped)."""
    return format_rfc3339(datetime.fromtimestamp(int(unix), UTC))


def parse_rfc3339(text: str) -> datetime:
    """Parse `...Z` or `...+hh:mm` (fractions allowed) into an aware UTC datetime."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {text!r}")
    return moment.astimezone(UTC)


def normalize_rfc3339(text: str | None) -> str | None:
    """Re-format a timestamp from the API into the `...Z` form; None stays None."""
    return None if text is None else format_rfc3339(parse_rfc3339(text))


def unix_of(text: str) -> float:
    """Unix seconds of an RFC 3339 timestamp."""
    return parse_rfc3339(text).timestamp()


def utc_now() -> datetime:
    return datetime.now(UTC)


def unix_of_http_date(text: str) -> float:
    """Unix seconds of an HTTP `Date` header (`Fri, 27 Nov 2026 03:33:03 GMT`)."""
    return parsedate_to_datetime(text).timestamp()
