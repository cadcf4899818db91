"""Metadata store: SQLModel tables, async engines and Alembic migrations."""

from polyvision.storage.metadata.engine import check, create_engine, session_maker
from polyvision.storage.metadata.migrate import current, head, upgrade

__all__ = ["check", "create_engine", "current", "head", "session_maker", "upgrade"]
