"""Liveness and readiness."""

from fastapi import APIRouter

from reportjobs_gateway.deps import CacheDep, StoreDep
from reportjobs_gateway.ports import StoreUnavailable
from reportjobs_gateway.schemas import ErrorPublic, HealthPublic

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> HealthPublic:
    """The process is alive."""
    return HealthPublic(status="ok")


@router.get("/readyz", responses={503: {"model": ErrorPublic}})
async def readyz(store: StoreDep, cache: CacheDep) -> HealthPublic:
    """The Kubernetes API is reachable, ReportJobs can be listed, and the caches have listed
    the window shards and the ReportJobs (the probe's answers also keep the server's clock
    fresh)."""
    await store.ping()
    if cache is not None and not cache.ready():
        raise StoreUnavailable("the caches have not listed the window shards and jobs yet")
    return HealthPublic(status="ready")
