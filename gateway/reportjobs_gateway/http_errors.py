"""Starlette's own HTTP errors, made to keep the API's promises.

- 405: Starlette answers a method mismatch from the first route whose path matches, so with one
  route per method (GET, POST, PUT on /jobs) its ``Allow`` header named a single one of them.
  Here ``Allow`` lists every method the path serves.
- 400 "There was an error parsing the body": FastAPI's answer to a body that is not text (not
  UTF-8). Like any other body that is not JSON, it gets the documented 422."""

from fastapi import Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match

from reportjobs_gateway.errors import on_invalid_request

HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> list[str]:
    """The methods some route of the app fully matches at the request's path, sorted."""
    routes = request.app.router.routes
    return [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


def undecodable_body(exc: HTTPException) -> RequestValidationError | None:
    """The validation error a body that is not UTF-8 text deserves, if that is what ``exc`` is."""
    cause = exc.__cause__
    if exc.status_code != status.HTTP_400_BAD_REQUEST or not isinstance(cause, UnicodeDecodeError):
        return None
    return RequestValidationError(
        [
            {
                "type": "json_invalid",
                "loc": ("body",),
                "msg": "JSON decode error",
                "ctx": {"error": f"the body is not UTF-8 text ({cause.reason})"},
            }
        ]
    )


async def on_http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's own answer, but with a complete ``Allow`` on a 405 and a 422 for a body
    that is not text."""
    assert isinstance(exc, HTTPException)
    if (invalid := undecodable_body(exc)) is not None:
        return await on_invalid_request(request, invalid)
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        headers = {**(exc.headers or {}), "Allow": ", ".join(allowed_methods(request))}
        exc = HTTPException(exc.status_code, detail=exc.detail, headers=headers)
    return await http_exception_handler(request, exc)
