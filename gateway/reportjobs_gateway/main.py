"""Builds the FastAPI application and wires routers, handlers and middleware."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from reportjobs_gateway.api.main import api_router
from reportjobs_gateway.caches import GatewayCaches
from reportjobs_gateway.creation import BackgroundCreates
from reportjobs_gateway.errors import on_invalid_request, on_store_unavailable, on_unexpected
from reportjobs_gateway.http_errors import on_http_error
from reportjobs_gateway.metrics import GatewayMiddleware
from reportjobs_gateway.openapi import install_openapi
from reportjobs_gateway.ports import StoreUnavailable
from reportjobs_gateway.servertime import ServerClock
from reportjobs_gateway.settings import GatewaySettings
from reportjobs_gateway.store import KubeStore
from reportjobs_kube.errors import Unreachable
from reportjobs_model.callbacks import AddressPolicy

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the watches of the caches (when enabled); readiness waits for their lists."""
    caches: GatewayCaches | None = app.state.caches
    if caches is not None:
        try:
            client = await app.state.store.connected()
        except Unreachable as exc:
            log.error("no Kubernetes client, so no caches (every request uses the API): %s", exc)
            app.state.caches = None
        else:
            caches.start(client=client, namespace=app.state.settings.namespace)
    yield
    await app.state.creates.drain()
    if app.state.caches is not None:
        await app.state.caches.stop()
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
    app.state.callback_policy = AddressPolicy.of(
        allowed_cidrs=settings.callback_allowed_cidrs,
        allowed_hosts=settings.callback_allowed_hosts,
        blocked_cidrs=settings.callback_blocked_cidrs,
    )
    clock = ServerClock()
    caches = GatewayCaches(clock=clock) if settings.cache else None
    app.state.caches = caches
    app.state.store = KubeStore(
        namespace=settings.namespace,
        api_timeout_seconds=settings.api_timeout_seconds,
        clock=clock,
        write_through=caches,
    )
    app.state.creates = BackgroundCreates()
    app.include_router(api_router)
    app.add_exception_handler(RequestValidationError, on_invalid_request)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(StoreUnavailable, on_store_unavailable)
    app.add_exception_handler(Exception, on_unexpected)
    install_openapi(app, settings)
    app.add_middleware(GatewayMiddleware, pod_name=settings.pod_name)
    return app


app = create_app()
