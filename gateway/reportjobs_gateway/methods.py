"""405 Method Not Allowed that names every method the path serves.

Starlette answers a method mismatch from the first route whose path matches, so with one route
per method (GET, POST, PUT on /jobs) its ``Allow`` header named a single one of them."""

from fastapi import Request, status
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match

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


async def on_http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's own answer, with a complete ``Allow`` header on a 405."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        headers = {**(exc.headers or {}), "Allow": ", ".join(allowed_methods(request))}
        exc = HTTPException(exc.status_code, detail=exc.detail, headers=headers)
    return await http_exception_handler(request, exc)
