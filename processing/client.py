"""The processing client: the one way to start, describe, reprocess and cancel a match's workflow.

Every start of a `MatchWorkflow` goes through `MatchProcessing.start`, so each run gets the same
workflow id (``match-{match_id}``), the search attributes operators find it by and the task
queues of the deployment's suffix, whether an upload, a reprocess or ``polyvision process``
started it.

Light by design: it calls Temporal by the recorded names of `polyvision.temporal.names` with the
contract types of `workflows.types`, and never imports the workflow module (nor, through it, an
activity). It knows nothing of HTTP: refusals are `ProcessingError`s and a Temporal that cannot
answer raises `temporalio.service.RPCError`; the API maps both to its problem answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import structlog
from temporalio.api.failure.v1 import Failure
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowHistoryEventFilterType,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from polyvision.settings import Settings
from polyvision.temporal import names
from polyvision.temporal.queues import QueueRole, queue_names
from polyvision.temporal.search_attributes import DEVICE_ID, MATCH_ID, ORGANIZATION_ID
from workflows.types import (
    STAGES,
    MatchInput,
    MatchOutput,
    MatchProgress,
    ReprocessRequest,
    ViewInput,
    ViewOutput,
)

log = structlog.get_logger(__name__)

# A query or an update needs a worker to answer: without one the caller hears so instead of
# hanging.
DESCRIBE_TIMEOUT = timedelta(seconds=10)
RUN_ID_TIMEOUT = timedelta(seconds=5)
QUERY_TIMEOUT = timedelta(seconds=5)
UPDATE_TIMEOUT = timedelta(seconds=15)

FRAME_STAGE_OF_ACTIVITY = {
    names.STITCH_CHUNK: "stitch",
    names.DETECT_CHUNK: "detect",
    names.VCAM_RENDER: "encode",
}
"""The chunk activities that heartbeat ``{"frames_done": n}``, and the stage they count for."""


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


def processing_state(execution: WorkflowExecutionStatus | None) -> ProcessingState:
    """Our name for Temporal's execution status (None: described while starting, so running)."""
    return ProcessingState.running if execution is None else _STATES[execution]


# --- refusals ------------------------------------------------------------------------------


class ProcessingError(Exception):
    """The workflow cannot do what was asked now; the message says why, for a person."""


class UnknownStage(ProcessingError):
    """A reprocess named a stage the pipeline does not have."""


class NotStarted(ProcessingError):
    """The match's workflow was never started."""


class ProcessingEnded(ProcessingError):
    """The match's workflow is no longer running (it ended before or during the call).

    Attributes:
        state: How it ended, when known (None: the run ended in between).
    """

    def __init__(self, state: ProcessingState | None = None) -> None:
        if state is None:
            message = "Processing of this match has ended."
        else:
            message = (
                f"Processing of this match has ended ({state.value}); only a running workflow "
                "can be reprocessed or cancelled."
            )
        super().__init__(message)
        self.state = state


class ReprocessRefused(ProcessingError):
    """The workflow's ``reprocess`` validator said no (the stage has not run yet, or another
    reprocess is pending)."""


class NoWorkerAnswered(ProcessingError):
    """No worker answered an update in time."""


class ViewRunning(ProcessingError):
    """The view asked for is being rendered now (its workflow is running).

    Attributes:
        run_id: The run rendering it.
    """

    def __init__(self, view: str, run_id: str | None) -> None:
        super().__init__(
            f"The view {view!r} of this match is being rendered now; wait for it to finish."
        )
        self.run_id = run_id


# --- answers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MatchRun:
    """The latest run of a match's workflow as Temporal describes it."""

    workflow_id: str
    run_id: str
    state: ProcessingState
    started_at: datetime | None
    closed_at: datetime | None


@dataclass(frozen=True)
class Reprocessed:
    """A reprocess the workflow accepted.

    Attributes:
        run_id: The run doing it (a new one for a finished match).
        detail: What happens, in words.
        restarted_from: The stage it starts from: the requested one on a running run,
            ``ingest`` for a new run.
        revision: The revision a new run writes; None when the running run redoes its own.
    """

    run_id: str
    detail: str
    restarted_from: str
    revision: int | None = None

    @property
    def new_run(self) -> bool:
        """Whether a new run was started (the match had finished)."""
        return self.revision is not None


@dataclass(frozen=True)
class ViewRun:
    """The latest run of one view of a match, as Temporal lists it.

    Attributes:
        view: The view's name.
        revision: The revision it renders from (and writes into).
        mode: The camera mode; ``params`` and ``causal``: its settings.
        state: How the run stands.
    """

    view: str
    revision: int
    mode: str
    params: dict[str, float]
    causal: bool
    workflow_id: str
    run_id: str
    state: ProcessingState
    started_at: datetime | None
    closed_at: datetime | None


NextRun = Callable[[], Awaitable[MatchInput]]
"""Builds the input of a new run for a finished match (its next revision); may raise."""


def ui_link(settings: Settings, workflow_id: str, run_id: str) -> str:
    """The Temporal UI page of a run."""
    return (
        f"{settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}"
        f"/workflows/{workflow_id}/{run_id}/history"
    )


def _frames_done(details: list[Any]) -> int:
    """Frames a chunk activity has done, from its heartbeat details (0 when they do not say).

    Stitch and render beat ``{"frames_done": n}``; detect beats its last checkpoint as
    ``frames_done`` and the frame it is at as ``frame``.
    """
    if not details or not isinstance(details[0], dict):
        return 0
    counts = [details[0].get("frames_done"), details[0].get("frame")]
    return max((int(n) for n in counts if isinstance(n, int | float)), default=0)


def failure_text(failure: Failure) -> str:
    """A failure and its causes as one line, outermost first, without repeats."""
    messages: list[str] = []
    current: Failure | None = failure
    while current is not None and len(messages) < 8:
        if current.message and current.message not in messages:
            messages.append(current.message)
        current = current.cause if current.HasField("cause") else None
    return ": ".join(messages)


def search_attributes(input: MatchInput | ViewInput) -> TypedSearchAttributes:
    """MatchId, OrganizationId and, when an edge box uploaded it, DeviceId of a run."""
    pairs = [
        SearchAttributePair(MATCH_ID, input.match_id),
        SearchAttributePair(ORGANIZATION_ID, input.organization_id),
    ]
    if isinstance(input, MatchInput) and input.device_id is not None:
        pairs.append(SearchAttributePair(DEVICE_ID, input.device_id))
    return TypedSearchAttributes(pairs)


def _literal(value: str) -> str:
    """``value`` as a string literal of a Temporal list filter.

    Raises:
        ValueError: It holds a quote or a backslash (ids never do).
    """
    if "'" in value or "\\" in value or '"' in value:
        raise ValueError(f"{value!r} cannot be used in a workflow filter")
    return f"'{value}'"


def _view_memo(input: ViewInput) -> dict[str, Any]:
    """What the view list shows of a run without reading its history (the run's memo)."""
    return {
        "view": input.view,
        "revision": input.revision,
        "mode": input.camera.mode,
        "params": dict(input.camera.params),
        "causal": input.camera.causal,
    }


async def _view_run(execution: WorkflowExecution) -> ViewRun | None:
    """A listed view run, from its memo (None for a run without one: not started by us)."""
    try:
        memo = await execution.memo()
        params = {str(name): float(value) for name, value in dict(memo["params"]).items()}
        return ViewRun(
            view=str(memo["view"]),
            revision=int(memo["revision"]),
            mode=str(memo["mode"]),
            params=params,
            causal=bool(memo["causal"]),
            workflow_id=execution.id,
            run_id=execution.run_id,
            state=processing_state(execution.status),
            started_at=execution.start_time,
            closed_at=execution.close_time,
        )
    except (KeyError, TypeError, ValueError):
        log.warning("a view run without a usable memo", workflow_id=execution.id)
        return None


class MatchProcessing:
    """Match workflows on one Temporal namespace, for one deployment's settings.

    Cheap to create: it holds the connected client and the settings (task-queue suffix,
    Temporal UI address), nothing else.

    Args:
        client: A connected client (`polyvision.temporal.client.connect`: the pydantic data
            converter the workers use).
        settings: Where the UI is and which task-queue suffix the workers poll.
    """

    def __init__(self, client: Client, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    @staticmethod
    def workflow_id(match_id: str) -> str:
        """The id of a match's workflow (``match-{match_id}``)."""
        return names.match_workflow_id(match_id)

    @staticmethod
    def view_workflow_id(match_id: str, view: str) -> str:
        """The id of the workflow rendering a view of a match (``match-{match_id}-view-{view}``)."""
        return names.view_workflow_id(match_id, view)

    def ui_link(self, workflow_id: str, run_id: str) -> str:
        """The Temporal UI page of a run."""
        return ui_link(self.settings, workflow_id, run_id)

    def _handle(
        self, workflow_id: str, run_id: str | None = None
    ) -> WorkflowHandle[Any, MatchOutput]:
        return self.client.get_workflow_handle(workflow_id, run_id=run_id, result_type=MatchOutput)

    # --- starting ------------------------------------------------------------------------

    async def start(self, input: MatchInput) -> str:
        """Start the match workflow for ``input.revision``, or find the running one; its run id.

        The workflow id comes from the match, the task queue and ``input.task_queue_suffix``
        from the settings (a suffix in ``input`` is replaced), and MatchId, OrganizationId and
        DeviceId (when known) are set at start, so operators find the run in the UI even before
        a worker picks it up. A running workflow of the match is found instead of started
        (a retried completion gets the run the first one started); a finished one is followed
        by a new run under the same id.

        Raises:
            RPCError: Temporal could not start it.
        """
        suffix = self.settings.task_queue_suffix
        handle = await self.client.start_workflow(
            names.MATCH_WORKFLOW,
            dataclasses.replace(
                input, task_queue_suffix=suffix, render_on_nvenc=self.settings.nvenc_pool
            ),
            id=self.workflow_id(input.match_id),
            task_queue=queue_names(suffix)[QueueRole.cpu],
            result_type=MatchOutput,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=search_attributes(input),
        )
        return handle.first_execution_run_id or handle.result_run_id or ""

    async def start_view(self, input: ViewInput) -> str:
        """Start rendering a view of a processed revision (`workflows.view`); its run id.

        The workflow id comes from the match and the view's name, so the same view cannot be
        rendered twice at once; a finished one (completed or not) is started again as a new
        run under the same id. The run carries MatchId and OrganizationId, and a memo with the
        view's name, revision and camera that `views` lists.

        Raises:
            ViewRunning: The view is being rendered now.
            RPCError: Temporal could not start it.
        """
        suffix = self.settings.task_queue_suffix
        try:
            handle = await self.client.start_workflow(
                names.MATCH_VIEW_WORKFLOW,
                dataclasses.replace(
                    input, task_queue_suffix=suffix, render_on_nvenc=self.settings.nvenc_pool
                ),
                id=self.view_workflow_id(input.match_id, input.view),
                task_queue=queue_names(suffix)[QueueRole.cpu],
                result_type=ViewOutput,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                search_attributes=search_attributes(input),
                memo=_view_memo(input),
            )
        except WorkflowAlreadyStartedError as exc:
            raise ViewRunning(input.view, exc.run_id) from exc
        return handle.first_execution_run_id or handle.result_run_id or ""

    async def views(self, organization_id: str, match_id: str) -> list[ViewRun]:
        """The latest run of every view of the match, newest first.

        Read from Temporal's visibility store (eventually consistent: a run started a moment
        ago may be missing, a finished one may still show running for a moment).

        Raises:
            ValueError: An id that cannot be put in a filter.
            RPCError: Temporal could not answer.
        """
        query = (
            f"WorkflowType = {_literal(names.MATCH_VIEW_WORKFLOW)}"
            f" AND {MATCH_ID.name} = {_literal(match_id)}"
            f" AND {ORGANIZATION_ID.name} = {_literal(organization_id)}"
        )
        latest: dict[str, WorkflowExecution] = {}
        async for execution in self.client.list_workflows(query, rpc_timeout=DESCRIBE_TIMEOUT):
            known = latest.get(execution.id)
            if known is None or execution.start_time > known.start_time:
                latest[execution.id] = execution
        runs = [run for e in latest.values() if (run := await _view_run(e)) is not None]
        return sorted(
            runs, key=lambda r: r.started_at.timestamp() if r.started_at else 0.0, reverse=True
        )

    async def view_result(self, workflow_id: str, run_id: str) -> ViewOutput:
        """Wait for a view's run to finish; what it produced.

        Raises:
            temporalio.client.WorkflowFailureError: The run failed, was cancelled or ended.
        """
        handle: WorkflowHandle[Any, ViewOutput] = self.client.get_workflow_handle(
            workflow_id, run_id=run_id, result_type=ViewOutput
        )
        return await handle.result()

    # --- looking ---------------------------------------------------------------------------

    async def describe(
        self, workflow_id: str, *, rpc_timeout: timedelta = DESCRIBE_TIMEOUT
    ) -> MatchRun | None:
        """The latest run of the workflow, or None when Temporal does not know it.

        Raises:
            RPCError: Temporal could not answer.
        """
        try:
            description = await self._handle(workflow_id).describe(rpc_timeout=rpc_timeout)
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return None
            raise
        return MatchRun(
            workflow_id=workflow_id,
            run_id=description.run_id,
            state=processing_state(description.status),
            started_at=description.start_time,
            closed_at=description.close_time,
        )

    async def current_run_id(self, workflow_id: str) -> str | None:
        """The run id of the workflow's latest run (None when Temporal no longer knows it).

        Raises:
            RPCError: Temporal could not answer.
        """
        run = await self.describe(workflow_id, rpc_timeout=RUN_ID_TIMEOUT)
        return None if run is None else run.run_id

    async def progress(self, workflow_id: str, run_id: str) -> MatchProgress | None:
        """The run's ``progress`` query; None when no worker answered (none running, or busy).

        While stitch, detect or encode runs, each stage's ``frames_done`` also counts the frames
        its chunks in flight have done (`frames_in_flight`), so a long chunk shows movement.
        """
        try:
            progress: MatchProgress = await self._handle(workflow_id, run_id).query(
                names.PROGRESS_QUERY, result_type=MatchProgress, rpc_timeout=QUERY_TIMEOUT
            )
        except (WorkflowQueryFailedError, WorkflowQueryRejectedError, RPCError):
            return None
        if any(stage in FRAME_STAGE_OF_ACTIVITY.values() for stage in progress.running):
            for stage, frames in (await self.frames_in_flight(workflow_id, run_id)).items():
                entry = progress.stages.get(stage)
                if entry is None or entry.finished_at is not None:
                    continue
                entry.frames_done += frames
                if entry.frames_total:
                    entry.frames_done = min(entry.frames_done, entry.frames_total)
        return progress

    async def frames_in_flight(self, workflow_id: str, run_id: str) -> dict[str, int]:
        """Frames done by the chunk activities running now, per stage; best effort.

        Read from the last heartbeat (``{"frames_done": n}``) of every pending stitch, detect
        and render activity of the run's batch child workflows (found as the run's pending
        children). Temporal keeps the latest heartbeat the worker sent, so this moves in the
        steps of the worker's heartbeat throttling. Empty when Temporal cannot say.
        """
        try:
            parent = await self._handle(workflow_id, run_id).describe(rpc_timeout=QUERY_TIMEOUT)
            children = [
                self.client.get_workflow_handle(child.workflow_id, run_id=child.run_id or None)
                for child in parent.raw_description.pending_children
            ]
            described = await asyncio.gather(
                *(child.describe(rpc_timeout=QUERY_TIMEOUT) for child in children),
                return_exceptions=True,
            )
        except RPCError:
            return {}
        frames: dict[str, int] = {}
        for description in (parent, *described):
            if isinstance(description, BaseException):
                continue
            for pending in description.raw_description.pending_activities:
                stage = FRAME_STAGE_OF_ACTIVITY.get(pending.activity_type.name)
                if stage is None or not pending.heartbeat_details.payloads:
                    continue
                try:
                    details = await self.client.data_converter.decode(
                        pending.heartbeat_details.payloads
                    )
                except Exception:  # details of another layout: count nothing for it
                    continue
                frames[stage] = frames.get(stage, 0) + _frames_done(details)
        return frames

    async def failure(self, workflow_id: str, run_id: str) -> str | None:
        """Why the run failed, from its closing event; None when Temporal cannot say."""
        handle = self._handle(workflow_id, run_id)
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

    async def result(self, workflow_id: str, run_id: str) -> MatchOutput:
        """Wait for the run (and any run it continues as) to finish; what it produced.

        Raises:
            temporalio.client.WorkflowFailureError: The run failed, was cancelled or ended.
        """
        return await self._handle(workflow_id, run_id).result()

    # --- acting ----------------------------------------------------------------------------

    async def _running(self, workflow_id: str) -> MatchRun:
        run = await self.describe(workflow_id)
        if run is None:
            raise NotStarted("Processing of this match has not started.")
        if run.state is not ProcessingState.running:
            raise ProcessingEnded(run.state)
        return run

    async def reprocess(
        self, workflow_id: str, from_stage: str, *, next_run: NextRun | None = None
    ) -> Reprocessed:
        """Redo ``from_stage`` and every stage after it.

        A running workflow is asked through its ``reprocess`` update (same revision). A
        finished one is started again as a new run, whose input ``next_run`` builds (the next
        revision, from ingest): outputs live per revision and are never rewritten in place.

        Raises:
            UnknownStage: ``from_stage`` is not a stage.
            NotStarted: The workflow was never started.
            ProcessingEnded: It has finished and there is no ``next_run``, or it ended during
                the update.
            ReprocessRefused: The workflow refuses now (the stage has not run yet, or another
                reprocess is pending).
            NoWorkerAnswered: No worker answered the update in time.
            RPCError: Temporal could not answer.
        """
        if from_stage not in STAGES:
            raise UnknownStage(f"unknown stage {from_stage!r}; one of {', '.join(STAGES)}")
        latest = await self.describe(workflow_id)
        if latest is not None and latest.state is not ProcessingState.running:
            if next_run is None:
                raise ProcessingEnded(latest.state)
            input = await next_run()
            run_id = await self.start(input)
            return Reprocessed(
                run_id=run_id,
                detail=f"processing again as revision {input.revision}, from ingest",
                restarted_from="ingest",
                revision=input.revision,
            )
        run = await self._running(workflow_id)
        try:
            answer: str = await self._handle(workflow_id, run.run_id).execute_update(
                names.REPROCESS_UPDATE,
                ReprocessRequest(from_stage=from_stage),
                result_type=str,
                rpc_timeout=UPDATE_TIMEOUT,
            )
        except WorkflowUpdateFailedError as exc:
            # The update's validator said no; its message says why.
            cause = exc.cause
            detail = cause.message if isinstance(cause, ApplicationError) else str(cause)
            raise ReprocessRefused(detail) from exc
        except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
            raise NoWorkerAnswered("No worker answered the reprocess request in time.") from exc
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:  # the run ended in between
                raise ProcessingEnded() from exc
            raise
        return Reprocessed(run_id=run.run_id, detail=answer, restarted_from=from_stage)

    async def cancel(self, workflow_id: str, *, reason: str) -> str:
        """Request cancellation of the running workflow (it removes the revision's outputs).

        Returns:
            The run id of the cancelled run.

        Raises:
            NotStarted: The workflow was never started.
            ProcessingEnded: It is not running.
            RPCError: Temporal could not answer.
        """
        run = await self._running(workflow_id)
        try:
            await self._handle(workflow_id, run.run_id).cancel(reason=reason)
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                raise ProcessingEnded() from exc
            raise
        return run.run_id
