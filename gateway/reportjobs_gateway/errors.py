"""Exception handlers: every error is JSON, none shows a stack trace."""

import logging
from typing import Any

from fastapi import Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from reportjobs_gateway.schemas import ValidationIssue

log = logging.getLogger(__name__)

SERVED_BY = "X-Served-By"
NOT_AN_OBJECT = "The body must be a JSON object (Content-Type: application/json)"


def _issue(error: dict[str, Any]) -> dict[str, Any]:
    message = str(error["msg"])
    if error["type"] == "json_invalid":
        message = f"Malformed JSON: {error.get('ctx', {}).get('error', 'cannot be parsed')}"
    elif error["type"] == "model_attributes_type" and tuple(error["loc"]) == ("body",):
        message = NOT_AN_OBJECT
    return ValidationIssue(loc=list(error["loc"]), msg=message, type=error["type"]).model_dump()


async def on_invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    issues = [_issue(error) for error in exc.errors()]
    return JSONResponse({"detail": issues}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def on_store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    """Last resort (outside every middleware, so it sets X-Served-By itself)."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        {"detail": "internal error"},
        status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
        headers={SERVED_BY: request.app.state.settings.pod_name},
    )
