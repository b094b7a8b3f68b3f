"""Dependencies of the routes (overridable in tests)."""

from typing import Annotated

from fastapi import Depends, Request

from reportjobs_gateway.ports import JobStore
from reportjobs_gateway.settings import GatewaySettings


def get_settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


def get_store(request: Request) -> JobStore:
    store: JobStore = request.app.state.store
    return store


SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
StoreDep = Annotated[JobStore, Depends(get_store)]
