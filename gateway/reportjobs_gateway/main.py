"""Builds the FastAPI application and wires routers, handlers and middleware."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from reportjobs_gateway.api.main import api_router
from reportjobs_gateway.errors import (
    SERVED_BY,
    on_invalid_request,
    on_store_unavailable,
    on_unexpected,
)
from reportjobs_gateway.http_errors import on_http_error
from reportjobs_gateway.openapi import install_openapi
from reportjobs_gateway.ports import StoreUnavailable
from reportjobs_gateway.settings import GatewaySettings
from reportjobs_gateway.store import KubeStore


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await app.state.store.close()


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    app = FastAPI(
        title="reportjobs",
        summary="Deduplicated report jobs on Kubernetes",
        lifespan=lifespan,
        strict_content_type=False,
    )
    app.state.settings = settings
    app.state.store = KubeStore(
        namespace=settings.namespace, api_timeout_seconds=settings.api_timeout_seconds
    )
    app.include_router(api_router)
    app.add_exception_handler(RequestValidationError, on_invalid_request)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(StoreUnavailable, on_store_unavailable)
    app.add_exception_handler(Exception, on_unexpected)
    install_openapi(app, settings)

    @app.middleware("http")
    async def served_by(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers[SERVED_BY] = settings.pod_name
        return response

    return app


app = create_app()
