"""Gateway concerns in the app itself: filled in by issue 5."""

from __future__ import annotations

from fastapi import FastAPI

from polyvision.settings import Settings


def install_gateway(app: FastAPI, settings: Settings) -> None:
    """Add the gateway middleware (CORS, security headers, size limits) to ``app``."""
