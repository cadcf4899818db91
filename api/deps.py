"""Dependencies handed to routers: the clients created in the app's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from api.app_state import temporal_client
from polyvision.mail import Mailer
from polyvision.settings import Settings
from polyvision.storage.analytics import AnalyticsStore
from polyvision.storage.objects import ObjectStore


# The accessors below are `async def` although they do no I/O: FastAPI runs a plain `def`
# dependency in its thread pool, a thread hop per request for reading an attribute.
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_objects(request: Request) -> ObjectStore:
    objects: ObjectStore = request.app.state.objects
    return objects


async def get_analytics(request: Request) -> AnalyticsStore:
    analytics: AnalyticsStore = request.app.state.analytics
    return analytics


async def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A metadata-database session for one request, closed when the request is done."""
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as session:
        yield session


async def get_temporal(request: Request) -> Client:
    """The app's Temporal client; 503 when Temporal cannot be reached."""
    try:
        return await temporal_client(request.app)
    except Exception as exc:  # any connection failure is the same for the caller
        raise HTTPException(
            503, "The processing service is unavailable; try again shortly."
        ) from exc


SettingsDep = Annotated[Settings, Depends(get_settings)]
ObjectsDep = Annotated[ObjectStore, Depends(get_objects)]
AnalyticsDep = Annotated[AnalyticsStore, Depends(get_analytics)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
# The one request-scoped database session every route and dependency shares.
DbSession = Annotated[AsyncSession, Depends(get_session)]
TemporalDep = Annotated[Client, Depends(get_temporal)]


async def get_mailer(request: Request) -> Mailer:
    """The app's outgoing mail (a logging stand-in when ``PV_SMTP_URL`` is empty)."""
    mailer: Mailer = request.app.state.mailer
    return mailer


MailerDep = Annotated[Mailer, Depends(get_mailer)]
