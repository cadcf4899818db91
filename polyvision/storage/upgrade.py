"""Bring every store's schema to the code's version: `polyvision db upgrade`."""

from __future__ import annotations

import structlog

from polyvision.settings import Settings
from polyvision.storage.analytics import apply_migrations, open_analytics_store
from polyvision.storage.metadata.migrate import upgrade as upgrade_metadata

log = structlog.get_logger(__name__)


def upgrade_stores(settings: Settings) -> None:
    """Apply the metadata (Alembic) and analytics (.sql) migrations; both are idempotent."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_metadata(settings.database_url)
    log.info("metadata schema up to date")
    with open_analytics_store(settings.analytics_url) as analytics:
        applied = apply_migrations(analytics)
    log.info("analytics schema up to date", applied=[m.version for m in applied])
