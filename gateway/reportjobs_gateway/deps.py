"""Dependencies of the routes (overridable in tests). They are `async def`: FastAPI runs a plain
`def` dependency in a worker thread, a thread hop per dependency and request."""

from typing import Annotated

from fastapi import Depends, Request

from reportjobs_gateway.creation import BackgroundCreates
from reportjobs_gateway.ports import Cache, JobStore
from reportjobs_gateway.settings import GatewaySettings
from reportjobs_model.callbacks import AddressPolicy


async def get_settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


async def get_store(request: Request) -> JobStore:
    store: JobStore = request.app.state.store
    return store


async def get_cache(request: Request) -> Cache | None:
    cache: Cache | None = request.app.state.caches
    return cache


async def get_callback_policy(request: Request) -> AddressPolicy:
    policy: AddressPolicy = request.app.state.callback_policy
    return policy


async def get_creates(request: Request) -> BackgroundCreates:
    creates: BackgroundCreates = request.app.state.creates
    return creates


SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
StoreDep = Annotated[JobStore, Depends(get_store)]
CacheDep = Annotated[Cache | None, Depends(get_cache)]
CreatesDep = Annotated[BackgroundCreates, Depends(get_creates)]
CallbackPolicyDep = Annotated[AddressPolicy, Depends(get_callback_policy)]
