"""The refresh-token table lives with the other metadata models (one schema, one migration
history); re-exported here for the auth code."""

from polyvision.storage.metadata.models import RefreshToken

__all__ = ["RefreshToken"]
