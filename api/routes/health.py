"""Liveness and readiness: /healthz says the process serves, /readyz that every store answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.app_state import temporal_client
from polyvision.storage.metadata.engine import check as check_database

router = APIRouter(tags=["operations"])

CHECK_TIMEOUT_S = 3.0


class CheckResult(BaseModel):
    status: Literal["ok", "failed"]
    latency_ms: float
    error: str | None = None


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, CheckResult]


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """Answers as long as the process serves requests; checks no dependency."""
    return {"status": "ok"}


async def _timed(check: Callable[[], Awaitable[object]]) -> CheckResult:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
    except Exception as exc:  # a readiness probe reports every failure, whatever its kind
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return CheckResult(
            status="failed", latency_ms=(time.perf_counter() - started) * 1000, error=error
        )
    return CheckResult(status="ok", latency_ms=(time.perf_counter() - started) * 1000)


@router.get(
    "/readyz",
    summary="Readiness",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency does not answer."}},
)
async def readyz(request: Request) -> JSONResponse:
    """Checks the metadata database, the analytics store, the object store and Temporal."""
    state = request.app.state

    async def temporal() -> None:
        client = await temporal_client(request.app)
        await client.service_client.check_health()

    checks = {
        "database": lambda: check_database(state.engine),
        "analytics": lambda: asyncio.to_thread(state.analytics.check),
        "objects": state.objects.check,
        "temporal": temporal,
    }
    names = list(checks)
    results = await asyncio.gather(*(_timed(checks[name]) for name in names))
    by_name = dict(zip(names, results, strict=True))
    ready = all(result.status == "ok" for result in results)
    body = Readiness(status="ready" if ready else "not ready", checks=by_name)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
