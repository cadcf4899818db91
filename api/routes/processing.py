"""Processing of a match: its workflow's status and progress, reprocess and cancel.

Temporal is the source of truth: the status comes from describing the match's workflow and
querying its `progress`; reprocess is the workflow's `reprocess` update, cancel is Temporal's
cancel (the workflow removes the revision's outputs itself). Every answer links the run's page
in the Temporal UI, where operators see the full history.

The handlers are thin: `processing.MatchProcessing` talks to Temporal, and this module maps its
refusals (`processing.ProcessingError`) and an unreachable Temporal (`RPCError`) to problems.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field
from temporalio.service import RPCError

from api.catalog import load_match
from api.deps import DbSession, SettingsDep, TemporalDep
from api.ingest.service import latest_completed_upload, match_input
from api.openapi import problem_responses
from api.security.tenancy import CanReprocess, CanView
from polyvision.storage.metadata.models import MatchStatus
from processing import (
    MatchProcessing,
    NotStarted,
    NoWorkerAnswered,
    ProcessingEnded,
    ProcessingError,
    ProcessingState,
    ReprocessRefused,
    UnknownStage,
)
from processing.catalog import match_workflow_id, reconciled_status
from workflows.types import STAGES, MatchInput, MatchProgress

router = APIRouter(prefix="/orgs/{org_id}", tags=["processing"])

log = structlog.get_logger(__name__)

UNAVAILABLE = "The processing service is unavailable; try again shortly."

# The state and the reconciliation live with the processing client; tests read them here.


async def match_processing(client: TemporalDep, settings: SettingsDep) -> MatchProcessing:
    """The processing client on the app's Temporal connection (503 when Temporal is down)."""
    return MatchProcessing(client, settings)


ProcessingDep = Annotated[MatchProcessing, Depends(match_processing)]


# --- bodies and answers ------------------------------------------------------------------


class StageStatus(BaseModel):
    """One stage: chunks (and frames) done out of the total, and when it ran."""

    done: int
    total: int
    started_at: datetime | None
    finished_at: datetime | None
    seconds: float | None = Field(description="How long the stage took, once finished.")
    running: bool = Field(default=False, description="Whether the stage is running now.")
    frames_done: int = Field(
        default=0,
        description=(
            "Frames done, counting the chunks in flight (stitch, detect and encode; 0 for the "
            "other stages). Chunks in flight report through their heartbeats, so this moves "
            "within a long chunk too."
        ),
    )
    frames_total: int = Field(
        default=0, description="Frames the stage works through (0 where it counts none)."
    )


class Progress(BaseModel):
    """The workflow's `progress` query: where it is and how far each stage got."""

    stage: str = Field(
        description=(
            "The stage running now; while several run side by side (stitch and detect, or "
            "analyze and encode) the latest of them in pipeline order; ``done`` at the end."
        )
    )
    revision: int
    failed: str | None
    stages: dict[str, StageStatus]
    running: list[str] = Field(
        default_factory=list, description="Every stage running now, in pipeline order."
    )


class ProcessingStatus(BaseModel):
    """A match's processing as Temporal sees it, and the catalog's status of the match."""

    status: ProcessingState
    match_status: MatchStatus | None = None
    workflow_id: str | None = None
    run_id: str | None = None
    started_at: datetime | None = None
    closed_at: datetime | None = None
    progress: Progress | None = Field(
        default=None, description="None when no worker answered the query in time."
    )
    ui_url: str | None = None
    failure: str | None = Field(
        default=None,
        description=(
            "Why a failed run failed: the failure and its causes, outermost first (e.g. the "
            "ingest activity refusing a mismatched pair)."
        ),
    )
    warnings: list[str] = Field(
        default_factory=list,
        description=(
            "What the processing found worth telling though it goes on, one line each (e.g. "
            "the two recordings are several frames apart and stitching corrects it). From the "
            "workflow's progress: empty when no worker answered."
        ),
    )


class ReprocessBody(BaseModel):
    """Which stage to run again; its outputs and every later stage's are redone."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"from_stage": "track"}]})

    from_stage: str = Field(max_length=32, description=f"One of: {', '.join(STAGES)}.")


class ProcessingAccepted(BaseModel):
    """A reprocess or cancel the workflow has accepted."""

    workflow_id: str
    run_id: str
    detail: str
    match_status: MatchStatus
    ui_url: str
    revision: int | None = Field(
        default=None, description="The revision being produced (reprocess only)."
    )
    restarted_from: str | None = Field(
        default=None,
        description=(
            "The stage the run starts from: ``from_stage`` for a running workflow, ``ingest`` "
            "for a finished match (a new run writes a new revision)."
        ),
    )


# --- views ------------------------------------------------------------------------------


def _moment(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def progress_view(progress: MatchProgress) -> Progress:
    """The query's dataclass as the API shows it (workflow times as datetimes)."""
    stages: dict[str, StageStatus] = {}
    for name in STAGES:
        entry = progress.stages.get(name)
        if entry is None:
            continue
        stages[name] = StageStatus(
            done=entry.done,
            total=entry.total,
            started_at=_moment(entry.started_at),
            finished_at=_moment(entry.finished_at),
            seconds=entry.seconds,
            running=name in progress.running,
            frames_done=entry.frames_done,
            frames_total=entry.frames_total,
        )
    return Progress(
        stage=progress.stage,
        revision=progress.revision,
        failed=progress.failed,
        stages=stages,
        running=[name for name in STAGES if name in progress.running],
    )


# --- errors ------------------------------------------------------------------------------

_STATUS: dict[type[ProcessingError], int] = {
    UnknownStage: 422,
    NotStarted: 409,
    ProcessingEnded: 409,
    ReprocessRefused: 409,
    NoWorkerAnswered: 503,
}


def _refused(exc: ProcessingError) -> HTTPException:
    """The problem answering a refusal of the processing client; its message is the detail."""
    return HTTPException(_STATUS.get(type(exc), 409), str(exc))


def _unavailable(exc: RPCError) -> HTTPException:
    """503 for a Temporal call that failed for another reason than a missing workflow."""
    # The caller can do nothing but retry, whatever the gRPC status; the log keeps it.
    log.warning("temporal call failed", status=exc.status.name, error=exc.message)
    return HTTPException(503, UNAVAILABLE)


# --- routes ------------------------------------------------------------------------------


@router.get(
    "/matches/{match_id}/processing",
    response_model=ProcessingStatus,
    summary="Processing status and progress of a match",
    responses=problem_responses(401, 404, 503),
)
async def get_processing(
    match_id: uuid.UUID, access: CanView, session: DbSession, processing: ProcessingDep
) -> ProcessingStatus:
    """The workflow's status, its stage and per-stage progress, and its Temporal UI page.

    A run that failed or was cancelled while the catalog still says ``processing`` brings the
    catalog up to date.
    """
    match = await load_match(session, access.organization_id, match_id)
    workflow_id = match_workflow_id(match)
    try:
        run = await processing.describe(workflow_id)
    except RPCError as exc:
        raise _unavailable(exc) from exc
    if run is None:
        return ProcessingStatus(status=ProcessingState.not_started, match_status=match.status)
    reconciled = reconciled_status(match.status, run.state)
    if reconciled is not None:
        match.status = reconciled
        session.add(match)
        await session.commit()
    failure = None
    if run.state in (ProcessingState.failed, ProcessingState.timed_out):
        failure = await processing.failure(workflow_id, run.run_id)
    progress = await processing.progress(workflow_id, run.run_id)
    return ProcessingStatus(
        status=run.state,
        match_status=match.status,
        workflow_id=workflow_id,
        run_id=run.run_id,
        started_at=run.started_at,
        closed_at=run.closed_at,
        progress=None if progress is None else progress_view(progress),
        ui_url=processing.ui_link(workflow_id, run.run_id),
        failure=failure,
        warnings=[] if progress is None else list(progress.warnings),
    )


@router.post(
    "/matches/{match_id}/processing/reprocess",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ProcessingAccepted,
    summary="Run a match's processing again from a stage",
    responses=problem_responses(401, 403, 404, 409, 422, 503),
)
async def reprocess(
    match_id: uuid.UUID,
    body: ReprocessBody,
    access: CanReprocess,
    session: DbSession,
    processing: ProcessingDep,
) -> ProcessingAccepted:
    """Redo ``from_stage`` and everything after it.

    A running workflow is asked through its ``reprocess`` update (same revision). A finished
    one (completed, failed, cancelled) is started again as a new run writing the next
    revision from ingest. 422 for an unknown stage; 409 when the workflow refuses now (the
    stage has not run yet, or another reprocess is pending), when the match never started, or
    when it has no uploaded recording.
    """
    match = await load_match(session, access.organization_id, match_id)

    async def next_run() -> MatchInput:
        # Outputs live per revision and segments are cached as immutable, so a finished
        # revision is never rewritten in place; the published one keeps serving viewers until
        # the new one is indexed. Stages before ``from_stage`` are therefore computed again too.
        upload = await latest_completed_upload(session, match)
        if upload is None:
            raise HTTPException(409, "This match has no uploaded recording to process again.")
        # Any run so far wrote at least revision 1 (the workflow input's default).
        return match_input(upload, match, max(match.revision, 1) + 1)

    workflow_id = match_workflow_id(match)
    try:
        done = await processing.reprocess(workflow_id, body.from_stage, next_run=next_run)
    except ProcessingError as exc:
        raise _refused(exc) from exc
    except RPCError as exc:
        raise _unavailable(exc) from exc
    if done.revision is not None:
        match.revision = done.revision
        match.status = MatchStatus.processing
        session.add(match)
        await session.commit()
    return ProcessingAccepted(
        workflow_id=workflow_id,
        run_id=done.run_id,
        detail=done.detail,
        match_status=match.status,
        ui_url=processing.ui_link(workflow_id, done.run_id),
        revision=match.revision,
        restarted_from=done.restarted_from,
    )


@router.post(
    "/matches/{match_id}/processing/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ProcessingAccepted,
    summary="Cancel a match's processing",
    responses=problem_responses(401, 403, 404, 409, 503),
)
async def cancel(
    match_id: uuid.UUID, access: CanReprocess, session: DbSession, processing: ProcessingDep
) -> ProcessingAccepted:
    """Request cancellation of the running workflow; it removes the revision's outputs.

    The catalog shows the match ``cancelled`` at once; the workflow ends a moment later.
    """
    match = await load_match(session, access.organization_id, match_id)
    workflow_id = match_workflow_id(match)
    try:
        run_id = await processing.cancel(workflow_id, reason=f"cancelled by {access.user.email}")
    except ProcessingError as exc:
        raise _refused(exc) from exc
    except RPCError as exc:
        raise _unavailable(exc) from exc
    match.status = MatchStatus.cancelled
    session.add(match)
    await session.commit()
    return ProcessingAccepted(
        workflow_id=workflow_id,
        run_id=run_id,
        detail="cancellation requested",
        match_status=match.status,
        ui_url=processing.ui_link(workflow_id, run_id),
    )
