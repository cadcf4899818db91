"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"

log = structlog.get_logger(__name__)


def problem(
    status: int,
    detail: str | None = None,
    *,
    title: str | None = None,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A ``application/problem+json`` response.

    Args:
        status: the HTTP status code.
        detail: a human-readable explanation specific to this occurrence.
        title: short summary of the problem type; defaults to the status phrase.
        type_: URI identifying the problem type.
        headers: extra response headers.
        **extensions: extension members (e.g. ``errors`` for validation failures).
    """
    body: dict[str, Any] = {
        "type": type_,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail is not None:
        body["detail"] = detail
    body.update(extensions)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    extensions: dict[str, Any] = {} if isinstance(exc.detail, str) else {"errors": exc.detail}
    headers = dict(exc.headers) if exc.headers else None
    return problem(exc.status_code, detail, headers=headers, **extensions)


async def _validation_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    return problem(422, "The request is not valid.", title="Invalid request", errors=errors)


async def _unhandled_exception(request: Request, exc: Exception) -> JSONResponse:
    # The client gets no internals; the log gets the traceback.
    log.exception("unhandled error", path=request.url.path, method=request.method)
    return problem(500, "An unexpected error occurred.")


def install_problem_handlers(app: FastAPI) -> None:
    """Make every 4xx/5xx the app produces a problem+json document."""
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(HTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_exception)
    app.add_exception_handler(Exception, _unhandled_exception)
