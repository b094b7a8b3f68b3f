"""Request and response bodies of the HTTP API, one schema per use."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from reportjobs_model.callbacks import MAX_URL_LENGTH
from reportjobs_model.phase import Phase

OBJECT_ID_MAX_LENGTH = 256


def ensure_encodable(value: str) -> str:
    """Reject lone surrogates (valid in JSON escapes, not encodable as UTF-8)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("object_id must be valid Unicode text (no lone surrogates)") from exc
    return value


def integral_number(value: object) -> object:
    """JSON has one number type, and JSON Schema's ``integer`` includes 57.0: take it as 57.
    5.5, "5" and true stay refused (the strict ``int`` after this)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


ObjectId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=OBJECT_ID_MAX_LENGTH,
        description="What to report on: any Unicode text of 1 to 256 characters.",
        examples=["invoice-2024-0042"],
    ),
    AfterValidator(ensure_encodable),
]


class JobSubmission(BaseModel):
    """Body of POST/PUT /jobs."""

    model_config = ConfigDict(extra="forbid", strict=True)

    object_id: ObjectId
    timeout_seconds: Annotated[int, Field(ge=1), BeforeValidator(integral_number)] | None = Field(
        default=None,
        description="Deadline of the job in seconds (1 to the configured maximum); "
        "null or absent for the default.",
    )
    callback_url: str | None = Field(
        default=None,
        max_length=MAX_URL_LENGTH,
        description="http(s) URL the outcome is POSTed to, signed (Standard Webhooks), when the "
        "job ends. Its host must resolve to public addresses (or ones the release allows). "
        "A submission answered with an existing job keeps that job's callback.",
        examples=["https://example.com/hooks/reports"],
    )


class NotificationPublic(BaseModel):
    """Delivery of the job's outcome to its callback_url."""

    state: Literal["Pending", "Delivered", "Failed"]
    attempts: int
    last_error: str | None
    delivered_at: datetime | None


class JobPublic(BaseModel):
    """A job as the API shows it."""

    job_id: str
    object_id: str
    status: Phase
    sleep_seconds: int | None
    timeout_seconds: int
    attempts: int
    created_at: datetime | None = Field(
        description="When the job was accepted; its dedup window starts here."
    )
    started_at: datetime | None
    finished_at: datetime | None
    message: str | None
    callback_url: str | None = None
    notification: NotificationPublic | None = None


class JobList(BaseModel):
    """Jobs of one object_id, newest first."""

    items: list[JobPublic]


class ErrorPublic(BaseModel):
    """Body of 404 and 503 answers."""

    detail: str


class CancelConflictPublic(BaseModel):
    """Body of the 409 a DELETE gets when the job finished otherwise."""

    detail: str
    job: JobPublic


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorPublic(BaseModel):
    """Body of 422 answers."""

    detail: list[ValidationIssue]


class HealthPublic(BaseModel):
    status: str
