"""Prometheus metrics of this process (one process per pod: cli.py runs one uvicorn worker)."""

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, include_in_schema=False)
async def metrics() -> Response:
    """Prometheus text format: submissions, submit latency, API requests, process."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
