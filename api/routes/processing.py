"""Processing of a match: its workflow's status and progress, reprocess and cancel.

Temporal is the source of truth: the status comes from describing the match's workflow and
querying its `progress`; reprocess is the workflow's `reprocess` update, cancel is Temporal's
cancel (the workflow removes the revision's outputs itself). Every answer links the run's page
in the Temporal UI, where operators see the full history.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import structlog
from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.api.failure.v1 import Failure
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHistoryEventFilterType,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.catalog import load_match
from api.deps import SettingsDep, TemporalDep
from api.ingest.service import start_match_workflow
from api.openapi import problem_responses
from api.security import DbSession
from api.security.tenancy import CanReprocess, CanView
from polyvision.settings import Settings
from polyvision.storage.metadata.models import Match, MatchStatus, Upload, UploadStatus
from programs.process import ui_link
from workflows.match import MatchWorkflow, workflow_id_for
from workflows.types import STAGES, MatchOutput, MatchProgress, ReprocessRequest

router = APIRouter(prefix="/orgs/{org_id}", tags=["processing"])

log = structlog.get_logger(__name__)

# A query or an update needs a worker to answer: without one the API says so instead of hanging.
DESCRIBE_TIMEOUT = timedelta(seconds=10)
QUERY_TIMEOUT = timedelta(seconds=5)
UPDATE_TIMEOUT = timedelta(seconds=15)

UNAVAILABLE = "The processing service is unavailable; try again shortly."
NOT_STARTED = "Processing of this match has not started."


class ProcessingState(StrEnum):
    """The state of a match's workflow (Temporal's execution status, or never started)."""

    not_started = "not_started"
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"
    terminated = "terminated"
    timed_out = "timed_out"
    continued_as_new = "continued_as_new"


_STATES = {
    WorkflowExecutionStatus.RUNNING: ProcessingState.running,
    WorkflowExecutionStatus.COMPLETED: ProcessingState.completed,
    WorkflowExecutionStatus.FAILED: ProcessingState.failed,
    WorkflowExecutionStatus.CANCELED: ProcessingState.cancelled,
    WorkflowExecutionStatus.TERMINATED: ProcessingState.terminated,
    WorkflowExecutionStatus.CONTINUED_AS_NEW: ProcessingState.continued_as_new,
    WorkflowExecutionStatus.TIMED_OUT: ProcessingState.timed_out,
}


# --- bodies and answers ------------------------------------------------------------------


class StageStatus(BaseModel):
    """One stage: chunks done out of the total, and when it ran."""

    done: int
    total: int
    started_at: datetime | None
    finished_at: datetime | None
    seconds: float | None = Field(description="How long the stage took, once finished.")


class Progress(BaseModel):
    """The workflow's `progress` query: where it is and how far each stage got."""

    stage: str
    revision: int
    failed: str | None
    stages: dict[str, StageStatus]


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


# --- pure helpers ------------------------------------------------------------------------


def processing_state(execution: WorkflowExecutionStatus | None) -> ProcessingState:
    """Our name for Temporal's execution status (None: described while starting, so running)."""
    return ProcessingState.running if execution is None else _STATES[execution]


def reconciled_status(current: MatchStatus, state: ProcessingState) -> MatchStatus | None:
    """The catalog status a match should get from its workflow's end, or None to keep it.

    Only a match the catalog still shows as processing changes: the index stage marks success
    (``ready``) itself, but a failed, terminated or cancelled run never reaches it.
    """
    if current != MatchStatus.processing:
        return None
    if state in (ProcessingState.failed, ProcessingState.terminated, ProcessingState.timed_out):
        return MatchStatus.failed
    if state == ProcessingState.cancelled:
        return MatchStatus.cancelled
    return None


def _moment(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def progress_view(progress: MatchProgress) -> Progress:
    """The query's dataclass as the API shows it (workflow times as datetimes)."""
    stages: dict[str, StageStatus] = {}
    for name in STAGES:
        entry = progress.stages.get(name)
        if entry is None:
            continue
        took = None
        if entry.started_at is not None and entry.finished_at is not None:
            took = entry.finished_at - entry.started_at
        stages[name] = StageStatus(
            done=entry.done,
            total=entry.total,
            started_at=_moment(entry.started_at),
            finished_at=_moment(entry.finished_at),
            seconds=took,
        )
    return Progress(
        stage=progress.stage, revision=progress.revision, failed=progress.failed, stages=stages
    )


# --- Temporal ----------------------------------------------------------------------------


def _unavailable(exc: RPCError) -> HTTPException:
    """503 for a Temporal call that failed for another reason than a missing workflow."""
    # The caller can do nothing but retry, whatever the gRPC status; the log keeps it.
    log.warning("temporal call failed", status=exc.status.name, error=exc.message)
    return HTTPException(503, UNAVAILABLE)


def _workflow_id(match: Match) -> str:
    return match.workflow_id or workflow_id_for(str(match.id))


async def _describe(client: Client, workflow_id: str) -> WorkflowExecutionDescription | None:
    """The latest run of the workflow, or None when it was never started."""
    handle = client.get_workflow_handle(workflow_id, result_type=MatchOutput)
    try:
        return await handle.describe(rpc_timeout=DESCRIBE_TIMEOUT)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise _unavailable(exc) from exc


async def _progress(client: Client, workflow_id: str, run_id: str) -> Progress | None:
    handle = client.get_workflow_handle(workflow_id, run_id=run_id, result_type=MatchOutput)
    try:
        progress = await handle.query(MatchWorkflow.progress, rpc_timeout=QUERY_TIMEOUT)
    except (WorkflowQueryFailedError, WorkflowQueryRejectedError, RPCError):
        # No worker answered (none running, or busy): the status is still worth showing.
        return None
    return progress_view(progress)


def failure_text(failure: Failure) -> str:
    """A failure and its causes as one line, outermost first, without repeats."""
    messages: list[str] = []
    current: Failure | None = failure
    while current is not None and len(messages) < 8:
        if current.message and current.message not in messages:
            messages.append(current.message)
        current = current.cause if current.HasField("cause") else None
    return ": ".join(messages)


async def _failure(client: Client, workflow_id: str, run_id: str) -> str | None:
    """Why the run failed, from its closing event; None when Temporal cannot say."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    try:
        async for event in handle.fetch_history_events(
            event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT
        ):
            if event.HasField("workflow_execution_failed_event_attributes"):
                return failure_text(event.workflow_execution_failed_event_attributes.failure)
            if event.HasField("workflow_execution_timed_out_event_attributes"):
                return "the workflow timed out"
    except RPCError:
        log.warning("could not read the closing event", workflow_id=workflow_id)
    return None


async def _running(client: Client, match: Match) -> WorkflowExecutionDescription:
    """The match's running workflow, or 409 when it never started or has ended."""
    description = await _describe(client, _workflow_id(match))
    if description is None:
        raise HTTPException(409, NOT_STARTED)
    state = processing_state(description.status)
    if state != ProcessingState.running:
        raise HTTPException(
            409,
            f"Processing of this match has ended ({state.value}); only a running workflow can "
            "be reprocessed or cancelled.",
        )
    return description


# --- routes ------------------------------------------------------------------------------


@router.get(
    "/matches/{match_id}/processing",
    response_model=ProcessingStatus,
    summary="Processing status and progress of a match",
    responses=problem_responses(401, 404, 503),
)
async def get_processing(
    match_id: uuid.UUID,
    access: CanView,
    session: DbSession,
    client: TemporalDep,
    settings: SettingsDep,
) -> ProcessingStatus:
    """The workflow's status, its stage and per-stage progress, and its Temporal UI page.

    A run that failed or was cancelled while the catalog still says ``processing`` brings the
    catalog up to date.
    """
    match = await load_match(session, access.organization_id, match_id)
    workflow_id = _workflow_id(match)
    description = await _describe(client, workflow_id)
    if description is None:
        return ProcessingStatus(status=ProcessingState.not_started, match_status=match.status)
    state = processing_state(description.status)
    reconciled = reconciled_status(match.status, state)
    if reconciled is not None:
        match.status = reconciled
        session.add(match)
        await session.commit()
    failure = None
    if state in (ProcessingState.failed, ProcessingState.timed_out):
        failure = await _failure(client, workflow_id, description.run_id)
    return ProcessingStatus(
        status=state,
        match_status=match.status,
        workflow_id=workflow_id,
        run_id=description.run_id,
        started_at=description.start_time,
        closed_at=description.close_time,
        progress=await _progress(client, workflow_id, description.run_id),
        ui_url=ui_link(settings, workflow_id, description.run_id),
        failure=failure,
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
    client: TemporalDep,
    settings: SettingsDep,
) -> ProcessingAccepted:
    """Redo ``from_stage`` and everything after it.

    A running workflow is asked through its ``reprocess`` update (same revision). A finished
    one (completed, failed, cancelled) is started again as a new run writing the next
    revision from ingest. 422 for an unknown stage; 409 when the workflow refuses now (the
    stage has not run yet, or another reprocess is pending), when the match never started, or
    when it has no uploaded recording.
    """
    match = await load_match(session, access.organization_id, match_id)
    if body.from_stage not in STAGES:
        raise HTTPException(422, f"unknown stage {body.from_stage!r}; one of {', '.join(STAGES)}")
    workflow_id = _workflow_id(match)
    latest = await _describe(client, workflow_id)
    if latest is not None and processing_state(latest.status) != ProcessingState.running:
        return await _process_again(session, client, settings, match, workflow_id)
    description = await _running(client, match)
    handle = client.get_workflow_handle(
        workflow_id, run_id=description.run_id, result_type=MatchOutput
    )
    try:
        answer = await handle.execute_update(
            MatchWorkflow.reprocess,
            ReprocessRequest(from_stage=body.from_stage),
            rpc_timeout=UPDATE_TIMEOUT,
        )
    except WorkflowUpdateFailedError as exc:
        # The update's validator said no; its message says why.
        cause = exc.cause
        detail = cause.message if isinstance(cause, ApplicationError) else str(cause)
        raise HTTPException(409, detail) from exc
    except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
        raise HTTPException(503, "No worker answered the reprocess request in time.") from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:  # the run ended in between
            raise HTTPException(409, "Processing of this match has ended.") from exc
        raise _unavailable(exc) from exc
    return ProcessingAccepted(
        workflow_id=workflow_id,
        run_id=description.run_id,
        detail=answer,
        match_status=match.status,
        ui_url=ui_link(settings, workflow_id, description.run_id),
        revision=match.revision,
        restarted_from=body.from_stage,
    )


async def _process_again(
    session: AsyncSession, client: Client, settings: Settings, match: Match, workflow_id: str
) -> ProcessingAccepted:
    """A finished match: a new run of its workflow writes the next revision, from ingest.

    Outputs live per revision and segments are cached as immutable, so a finished revision is
    never rewritten in place; the published one keeps serving viewers until the new one is
    indexed. Stages before ``from_stage`` are therefore computed again too.
    """
    upload = (
        await session.exec(
            select(Upload)
            .where(
                col(Upload.match_id) == match.id,
                col(Upload.organization_id) == match.organization_id,
                col(Upload.status) == UploadStatus.completed,
            )
            .order_by(col(Upload.completed_at).desc())
        )
    ).first()
    if upload is None:
        raise HTTPException(409, "This match has no uploaded recording to process again.")
    # Any run so far wrote at least revision 1 (the workflow input's default).
    revision = max(match.revision, 1) + 1
    try:
        run_id = await start_match_workflow(client, settings, upload, match, revision)
    except RPCError as exc:
        raise _unavailable(exc) from exc
    match.revision = revision
    match.status = MatchStatus.processing
    session.add(match)
    await session.commit()
    return ProcessingAccepted(
        workflow_id=workflow_id,
        run_id=run_id,
        detail=f"processing again as revision {revision}, from ingest",
        match_status=match.status,
        ui_url=ui_link(settings, workflow_id, run_id),
        revision=revision,
        restarted_from="ingest",
    )


@router.post(
    "/matches/{match_id}/processing/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ProcessingAccepted,
    summary="Cancel a match's processing",
    responses=problem_responses(401, 403, 404, 409, 503),
)
async def cancel(
    match_id: uuid.UUID,
    access: CanReprocess,
    session: DbSession,
    client: TemporalDep,
    settings: SettingsDep,
) -> ProcessingAccepted:
    """Request cancellation of the running workflow; it removes the revision's outputs.

    The catalog shows the match ``cancelled`` at once; the workflow ends a moment later.
    """
    match = await load_match(session, access.organization_id, match_id)
    description = await _running(client, match)
    workflow_id = _workflow_id(match)
    handle = client.get_workflow_handle(
        workflow_id, run_id=description.run_id, result_type=MatchOutput
    )
    try:
        await handle.cancel(reason=f"cancelled by {access.user.email}")
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(409, "Processing of this match has ended.") from exc
        raise _unavailable(exc) from exc
    match.status = MatchStatus.cancelled
    session.add(match)
    await session.commit()
    return ProcessingAccepted(
        workflow_id=workflow_id,
        run_id=description.run_id,
        detail="cancellation requested",
        match_status=match.status,
        ui_url=ui_link(settings, workflow_id, description.run_id),
    )
