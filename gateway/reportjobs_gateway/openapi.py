"""The OpenAPI document, completed with what only the settings know."""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from reportjobs_gateway.settings import GatewaySettings

SUBMISSION_SCHEMA = "JobSubmission"


def build_openapi(app: FastAPI, settings: GatewaySettings) -> dict[str, Any]:
    """FastAPI's document for ``app``, with ``timeout_seconds`` bounded by the configured
    maximum (the submission route refuses more with a 422)."""
    document = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    timeout = document["components"]["schemas"][SUBMISSION_SCHEMA]["properties"]["timeout_seconds"]
    for variant in timeout["anyOf"]:
        if variant.get("type") == "integer":
            variant["maximum"] = settings.max_timeout_seconds
    return document


def install_openapi(app: FastAPI, settings: GatewaySettings) -> None:
    """Serve ``build_openapi`` at /openapi.json, built once (FastAPI's documented way to
    extend the document: replace ``app.openapi``)."""
    document = build_openapi(app, settings)
    app.openapi = lambda: document  # type: ignore[method-assign]
