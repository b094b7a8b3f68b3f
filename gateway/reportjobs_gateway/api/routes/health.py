"""Liveness and readiness."""

from fastapi import APIRouter

from reportjobs_gateway.deps import StoreDep
from reportjobs_gateway.schemas import ErrorPublic, HealthPublic

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> HealthPublic:
    """The process is alive."""
    return HealthPublic(status="ok")


@router.get("/readyz", responses={503: {"model": ErrorPublic}})
async def readyz(store: StoreDep) -> HealthPublic:
    """The Kubernetes API is reachable and ReportJobs can be listed."""
    await store.ping()
    return HealthPublic(status="ready")
