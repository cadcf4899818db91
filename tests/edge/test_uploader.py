"""How the uploader reads the server's refusals of a completion (pure).

The refusals are built with the server's own problem type URIs (`api.ingest.service`).
"""

from __future__ import annotations

import httpx

from api.ingest.service import COMPLETION_IN_PROGRESS, MISSING_PARTS
from edge.client import ApiError, error_from_response
from edge.uploader import (
    COMPLETION_IN_PROGRESS_TYPE,
    COMPLETION_WAIT_S,
    completion_in_progress,
    completion_wait,
)


def _problem(status: int, type_: str, title: str, detail: str, **headers: str) -> ApiError:
    """The client's error for a problem+json answer, as it reads a real response."""
    response = httpx.Response(
        status,
        json={"type": type_, "title": title, "status": status, "detail": detail},
        headers=headers,
    )
    return error_from_response(response)


def test_the_edge_knows_the_servers_problem_types() -> None:
    # The edge branches on the type URI the server sends; a rename on either side must fail here.
    assert COMPLETION_IN_PROGRESS_TYPE == COMPLETION_IN_PROGRESS
    assert MISSING_PARTS != COMPLETION_IN_PROGRESS


def test_completion_in_progress_is_told_apart_from_missing_parts() -> None:
    in_progress = _problem(
        409,
        COMPLETION_IN_PROGRESS,
        "Completion in progress",
        "completion in progress; retry shortly",
        **{"Retry-After": "5"},
    )
    missing = _problem(409, MISSING_PARTS, "Missing parts", "Missing parts: left 2.")
    closed = _problem(409, "about:blank", "Conflict", "The upload session is failed.")
    assert completion_in_progress(in_progress)
    assert not completion_in_progress(missing)
    assert not completion_in_progress(closed)
    # Never by the wording of the detail or the title.
    assert not completion_in_progress(
        _problem(409, "about:blank", "Completion in progress", "completion in progress")
    )
    assert not completion_in_progress(
        _problem(503, COMPLETION_IN_PROGRESS, "Completion in progress", "busy")
    )


def test_completion_wait_honours_retry_after() -> None:
    with_header = _problem(
        409, COMPLETION_IN_PROGRESS, "Completion in progress", "x", **{"Retry-After": "7"}
    )
    assert completion_wait(with_header) == 7.0
    without = _problem(409, COMPLETION_IN_PROGRESS, "Completion in progress", "x")
    assert completion_wait(without) == COMPLETION_WAIT_S
