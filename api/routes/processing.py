"""Processing: filled in by issue 5."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/orgs/{org_id}", tags=["processing"])
