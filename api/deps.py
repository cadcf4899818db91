"""Dependencies handed to routers: the clients created in the app's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from polyvision.settings import Settings
from polyvision.storage.analytics import AnalyticsStore
from polyvision.storage.objects import ObjectStore


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_objects(request: Request) -> ObjectStore:
    objects: ObjectStore = request.app.state.objects
    return objects


def get_analytics(request: Request) -> AnalyticsStore:
    analytics: AnalyticsStore = request.app.state.analytics
    return analytics


def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
ObjectsDep = Annotated[ObjectStore, Depends(get_objects)]
AnalyticsDep = Annotated[AnalyticsStore, Depends(get_analytics)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
