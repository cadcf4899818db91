"""The stores a pipeline worker binds its activities to, opened once per process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from polyvision.settings import Settings
from polyvision.storage.analytics import AnalyticsStore, apply_migrations, open_analytics_store
from polyvision.storage.metadata.engine import create_engine, session_maker
from polyvision.storage.objects import ObjectStore, open_object_store


@dataclass(frozen=True)
class PipelineStores:
    """Clients and local directories of a pipeline worker.

    Attributes:
        objects: Recordings, intermediate videos, manifests, HLS.
        analytics: Detections, track points, statistics.
        sessions: Metadata sessions (the catalog), if the worker updates it.
        models_dir: Where the detector model is (``PV_MODELS_DIR``).
        work_dir: Local scratch and cache space (recordings, remap tables).
    """

    objects: ObjectStore
    analytics: AnalyticsStore
    sessions: async_sessionmaker[AsyncSession] | None
    models_dir: Path
    work_dir: Path


@contextlib.asynccontextmanager
async def open_pipeline_stores(settings: Settings) -> AsyncIterator[PipelineStores]:
    """Open every store of ``settings`` for a worker; close them all on exit."""
    work_dir = settings.data_dir / "worker"
    work_dir.mkdir(parents=True, exist_ok=True)
    objects = open_object_store(
        settings.objects_url, secret=settings.secret, public_base_url=settings.api_public_url
    )
    analytics = open_analytics_store(settings.analytics_url)
    engine = create_engine(settings.database_url)
    try:
        apply_migrations(analytics)
        yield PipelineStores(
            objects=objects,
            analytics=analytics,
            sessions=session_maker(engine),
            models_dir=settings.models_dir,
            work_dir=work_dir,
        )
    finally:
        await engine.dispose()
        analytics.close()
        await objects.close()
