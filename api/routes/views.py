"""Views of a processed match: its virtual camera rendered again in another mode.

``POST /orgs/{org_id}/matches/{match_id}/views`` starts the view workflow (`workflows.view`) on
the match's published revision: only the camera is planned, rendered and packaged again; the
panorama, detections and tracks are reused. The view is named after its settings
(`processing.views.view_name`), so the same settings asked for twice are the same view (409
while it renders). ``GET`` lists the match's views from Temporal, and the playback route plays
one with ``?view=NAME`` once it has finished (`api.routes.delivery`).

The handlers are thin, as in `api.routes.processing`: `processing.views` checks and starts,
and this module maps its refusals and an unreachable Temporal to problems.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import structlog
from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints
from temporalio.service import RPCError

from activities.vcam.contracts import CAMERA_MODES
from api.catalog import load_match
from api.deps import DbSession
from api.openapi import problem_responses
from api.routes.processing import UNAVAILABLE, ProcessingDep
from api.security.tenancy import CanReprocess, CanView
from processing import ProcessingError, ProcessingState, ViewRunning
from processing.views import (
    MAX_PARAMS,
    PARAM_NAME,
    InvalidCamera,
    MatchNotReady,
    camera_settings,
    start_view,
)

router = APIRouter(prefix="/orgs/{org_id}", tags=["views"])

log = structlog.get_logger(__name__)

ParamName = Annotated[str, StringConstraints(pattern=PARAM_NAME.pattern)]
FiniteNumber = Annotated[float, Field(allow_inf_nan=False, strict=True)]


# --- bodies and answers ------------------------------------------------------------------


class ViewBody(BaseModel):
    """The camera of the view: a mode and, optionally, overrides of its parameters."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"mode": "zones", "params": {"pan_speed": 0.8}, "causal": False}]
        }
    )

    mode: str = Field(
        max_length=32,
        description=f"The camera mode, one of: {', '.join(CAMERA_MODES)}.",
        json_schema_extra={"enum": list(CAMERA_MODES)},
    )
    params: dict[ParamName, FiniteNumber] = Field(
        default_factory=dict,
        max_length=MAX_PARAMS,
        description=(
            "Overrides of the mode's tuning by name (finite numbers); a name the mode does not "
            "know fails the view's rendering."
        ),
    )
    causal: StrictBool = Field(
        default=False, description="Plan without looking at future frames, as a live camera."
    )


class ViewAccepted(BaseModel):
    """A view whose rendering started."""

    view: str = Field(description="The view's name: ``?view=`` of the playback route.")
    revision: int = Field(description="The processed revision it reuses and writes into.")
    mode: str
    params: dict[str, float]
    causal: bool
    status: ProcessingState
    workflow_id: str
    run_id: str
    ui_url: str


class ViewItem(BaseModel):
    """One view of a match and how its rendering stands."""

    view: str
    revision: int
    mode: str
    params: dict[str, float]
    causal: bool
    status: ProcessingState = Field(
        description="``completed`` once it can be played; ``running`` while it renders."
    )
    workflow_id: str
    run_id: str
    started_at: datetime | None
    closed_at: datetime | None
    ui_url: str
    failure: str | None = Field(
        default=None,
        description=(
            "Why a failed rendering failed, outermost cause first (e.g. the planner refusing a "
            "parameter its mode does not have)."
        ),
    )


# --- errors ------------------------------------------------------------------------------

_STATUS: dict[type[ProcessingError], int] = {
    InvalidCamera: 422,
    MatchNotReady: 409,
    ViewRunning: 409,
}


def _refused(exc: ProcessingError) -> HTTPException:
    """The problem answering a refusal; its message is the detail."""
    return HTTPException(_STATUS.get(type(exc), 409), str(exc))


def _unavailable(exc: RPCError) -> HTTPException:
    """503 for a Temporal call that failed: the caller can only retry."""
    log.warning("temporal call failed", status=exc.status.name, error=exc.message)
    return HTTPException(503, UNAVAILABLE)


# --- routes ------------------------------------------------------------------------------


@router.post(
    "/matches/{match_id}/views",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ViewAccepted,
    summary="Render a processed match's virtual camera in another mode",
    responses=problem_responses(401, 403, 404, 409, 422, 503),
)
async def create_view(
    match_id: uuid.UUID,
    body: ViewBody,
    access: CanReprocess,
    session: DbSession,
    processing: ProcessingDep,
) -> ViewAccepted:
    """Plan, render and package the camera again with ``mode`` and ``params``.

    Stitching, detection and tracking are not run again: the match's published revision's
    outputs are reused. 422 for an unknown mode or a parameter that is not a finite number;
    409 when the match has no finished processing yet, or when the same view (same mode,
    parameters and ``causal``) is rendering now. A finished view asked for again is rendered
    again under the same name.
    """
    match = await load_match(session, access.organization_id, match_id)
    try:
        camera = camera_settings(body.mode, body.params, body.causal)
        started = await start_view(processing, match, camera)
    except ProcessingError as exc:
        raise _refused(exc) from exc
    except RPCError as exc:
        raise _unavailable(exc) from exc
    return ViewAccepted(
        view=started.view,
        revision=started.revision,
        mode=camera.mode,
        params=camera.params,
        causal=camera.causal,
        status=ProcessingState.running,
        workflow_id=started.workflow_id,
        run_id=started.run_id,
        ui_url=processing.ui_link(started.workflow_id, started.run_id),
    )


@router.get(
    "/matches/{match_id}/views",
    response_model=list[ViewItem],
    summary="List a match's re-rendered views",
    responses=problem_responses(401, 404, 503),
)
async def list_views(
    match_id: uuid.UUID, access: CanView, session: DbSession, processing: ProcessingDep
) -> list[ViewItem]:
    """Every view asked for, newest first, with the state of its latest rendering.

    Listed from Temporal's visibility store: a view asked for a moment ago may take a moment
    to appear.
    """
    match = await load_match(session, access.organization_id, match_id)
    try:
        runs = await processing.views(str(match.organization_id), str(match.id))
    except RPCError as exc:
        raise _unavailable(exc) from exc
    failures = {
        run.run_id: await processing.failure(run.workflow_id, run.run_id)
        for run in runs
        if run.state in (ProcessingState.failed, ProcessingState.timed_out)
    }
    return [
        ViewItem(
            view=run.view,
            revision=run.revision,
            mode=run.mode,
            params=run.params,
            causal=run.causal,
            status=run.state,
            workflow_id=run.workflow_id,
            run_id=run.run_id,
            started_at=run.started_at,
            closed_at=run.closed_at,
            ui_url=processing.ui_link(run.workflow_id, run.run_id),
            failure=failures.get(run.run_id),
        )
        for run in runs
    ]
