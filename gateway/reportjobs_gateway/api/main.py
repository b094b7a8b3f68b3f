"""All routers of the API."""

from fastapi import APIRouter

from reportjobs_gateway.api.routes import health, job_events, jobs, metrics

api_router = APIRouter()
api_router.include_router(jobs.router)
api_router.include_router(job_events.router)
api_router.include_router(health.router)
api_router.include_router(metrics.router)
