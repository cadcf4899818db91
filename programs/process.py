"""`polyvision process`: upload a recording pair, start its match workflow, show live progress.

The match is started the way an upload through the API starts one (`processing.MatchProcessing`:
the deployment's task-queue suffix, the MatchId/OrganizationId search attributes) and gets a
catalog row in an organization (`processing.catalog`): ``--org`` is an organization's id or a
slug whose organization is found or created (``local`` by default), so the index stage marks
the match ``ready`` and the API lists and serves it to that organization's members.

Running it again with the ``--match-id`` of a match whose workflow is running follows that run;
of a finished match, it uploads the pair again and processes it as the next revision.

It talks to the running stack: the ``stack.json`` a `polyvision up` publishes in its data
directory (``--stack DIR``, by default ``PV_DATA_DIR``; `programs.stack_state`) names the
stack's Temporal, task queues and stores, so the recording lands where the stack's worker reads
it. Without a running `polyvision up` there, the command's own ``PV_`` settings apply (a
deployment's shared stores and Temporal). Once the match runs, a Temporal that stops answering
(a restart) is waited for with backoff, and the progress display carries on when it is back.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import WorkflowFailureError
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError, RPCStatusCode

from polyvision.settings import Settings
from polyvision.storage.metadata.models import AssetKind, Match
from polyvision.storage.objects import open_object_store
from processing import MatchProcessing, ProcessingState
from processing.catalog import (
    LOCAL_ORGANIZATION,
    Recording,
    mark_failed,
    organization_for,
    register_match,
)
from programs.progress_text import StageLine, format_stages
from programs.stack_state import StackState, running_stack
from workflows.types import STAGES, MatchInput, MatchOutput, MatchProgress

POLL_S = 1.0
RECONNECT_FIRST_S = 1.0
RECONNECT_MAX_S = 15.0
OUTAGE_LIMIT_S = 600.0
"""How long Temporal may stay unreachable while a match is followed before the command gives
up (the match itself carries on: its workflow lives in Temporal, not in this command)."""
UNAVAILABLE = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)

Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class ProcessRequest:
    """What to process and for whom.

    Attributes:
        organization: An organization's id, or the slug of one to find or create.
        match_id: The match (default: a new one).
        title: The match's title in the catalog (default: the two files' names).
        home_kit_colour, away_kit_colour, home_starts_left: The side settings that map the two
            kits to home and away (`activities.track.sides`); kept in the catalog row too, so
            the API's read-time swap compares like with like.
    """

    left: Path
    right: Path
    rig: Path
    organization: str = LOCAL_ORGANIZATION
    match_id: uuid.UUID | None = None
    title: str | None = None
    chunk_seconds: float = 10.0
    panorama_scale: float = 1.0
    home_kit_colour: str | None = None
    away_kit_colour: str | None = None
    home_starts_left: bool | None = None


def stage_lines(progress: MatchProgress) -> list[StageLine]:
    """The stages that started, as the progress display shows them."""
    lines = []
    for name in STAGES:
        entry = progress.stages.get(name)
        if entry is None:
            continue
        lines.append(
            StageLine(
                name=name,
                done=entry.done,
                total=entry.total,
                frames_done=entry.frames_done,
                frames_total=entry.frames_total,
                seconds=entry.seconds,
                running=name in progress.running,
            )
        )
    return lines


def format_progress(progress: MatchProgress) -> str:
    """The stage running, then one line per stage: chunks (and frames) done, and its time."""
    return format_stages(
        progress.stage, progress.running, stage_lines(progress), STAGES, progress.warnings
    )


def default_title(request: ProcessRequest) -> str:
    """``left.mp4 + right.mp4``: the title of a match nobody named."""
    return f"{request.left.name} + {request.right.name}"[:300]


@dataclass(frozen=True)
class UploadedPair:
    """Where the pair and its rig went, and what the catalog records of the recordings."""

    left_key: str
    right_key: str
    rig_key: str
    recordings: list[Recording]


async def upload_pair(
    settings: Settings, organization_id: uuid.UUID, request: ProcessRequest
) -> UploadedPair:
    """Put the two recordings and the rig in the object store.

    Under a fresh prefix per run, laid out like an API upload session's:
    ``orgs/{org}/uploads/{upload}/left.mp4``, ``right.mp4`` and ``rig.json``.
    """
    prefix = f"orgs/{organization_id}/uploads/{uuid.uuid4()}/"
    keys = {
        "left": f"{prefix}left{request.left.suffix.lower()}",
        "right": f"{prefix}right{request.right.suffix.lower()}",
        "rig": f"{prefix}rig.json",
    }
    recordings: list[Recording] = []
    async with open_object_store(
        settings.objects_url, secret=settings.secret, public_base_url=settings.api_public_url
    ) as objects:
        for name, path, kind in (
            ("left", request.left, AssetKind.recording_left),
            ("right", request.right, AssetKind.recording_right),
        ):
            info = await objects.upload_file(keys[name], path)
            recordings.append(
                Recording(
                    kind=kind,
                    key=info.key,
                    size=info.size,
                    sha256=info.sha256,
                    content_type=info.content_type,
                )
            )
        await objects.upload_file(keys["rig"], request.rig)
    return UploadedPair(keys["left"], keys["right"], keys["rig"], recordings)


def _say(show: bool, text: str) -> None:
    if show:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def _note(text: str) -> None:
    sys.stderr.write(f"polyvision process: {text}\n")
    sys.stderr.flush()


def temporal_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says Temporal cannot be reached now (down, restarting), not that it
    refused the call."""
    return isinstance(exc, RPCError) and exc.status in UNAVAILABLE


async def start_match(
    processing: MatchProcessing, sessions: Sessions, request: ProcessRequest
) -> tuple[uuid.UUID, str]:
    """Upload the pair, record the match in the catalog and start its workflow.

    A match whose workflow is running is followed instead (nothing is uploaded); a finished
    one is processed again as its next revision.

    Returns:
        The match id and the run id.

    Raises:
        LookupError: ``request.organization`` is an unknown id, or the match belongs to
            another organization.
        ValueError: ``request.organization`` is neither an id nor a slug.
        RPCError: Temporal could not answer.
    """
    match_id = request.match_id or uuid.uuid4()
    async with sessions() as session:
        organization = await organization_for(session, request.organization)
        existing = await session.get(Match, match_id)
    if existing is not None and existing.organization_id != organization.id:
        raise LookupError(f"match {match_id} belongs to another organization")
    workflow_id = processing.workflow_id(str(match_id))
    latest = await processing.describe(workflow_id)
    if latest is not None and latest.state is ProcessingState.running:
        return match_id, latest.run_id
    # As the API's reprocess: a match processed before gets the next revision.
    revision = max(existing.revision if existing is not None else 0, 1)
    if latest is not None:
        revision += 1
    pair = await upload_pair(processing.settings, organization.id, request)
    async with sessions() as session:
        await register_match(
            session,
            organization_id=organization.id,
            match_id=match_id,
            title=request.title or default_title(request),
            revision=revision,
            recordings=pair.recordings,
            home_kit_colour=request.home_kit_colour,
            away_kit_colour=request.away_kit_colour,
            home_starts_left=request.home_starts_left,
        )
    try:
        run_id = await processing.start(
            MatchInput(
                organization_id=str(organization.id),
                match_id=str(match_id),
                left_key=pair.left_key,
                right_key=pair.right_key,
                rig_key=pair.rig_key,
                revision=revision,
                chunk_seconds=request.chunk_seconds,
                panorama_scale=request.panorama_scale,
                home_kit_colour=request.home_kit_colour,
                away_kit_colour=request.away_kit_colour,
                home_starts_left=request.home_starts_left,
            )
        )
    except Exception:
        async with sessions() as session:
            await mark_failed(session, match_id)
        raise
    return match_id, run_id


async def process_match(
    processing: MatchProcessing, sessions: Sessions, request: ProcessRequest, *, show: bool = True
) -> MatchOutput:
    """Start (or follow) the match's workflow and print its progress until it ends.

    Raises:
        WorkflowFailureError: The run failed or was cancelled.
        LookupError, ValueError, RPCError: as `start_match`.
    """
    match_id, run_id = await start_match(processing, sessions, request)
    workflow_id = processing.workflow_id(str(match_id))
    _say(show, f"match {match_id}: {processing.ui_link(workflow_id, run_id)}")
    return await follow_match(processing, workflow_id, run_id, show=show)


async def follow_match(
    processing: MatchProcessing,
    workflow_id: str,
    run_id: str,
    *,
    show: bool = True,
    outage_limit_s: float = OUTAGE_LIMIT_S,
) -> MatchOutput:
    """Wait for the run's result, showing its progress; ride out Temporal being unreachable.

    When Temporal stops answering (a restart of the server), the client's connection comes
    back by itself once it answers again: this waits for that with backoff (1 s doubling to
    15 s), says so on stderr, and follows the run on.

    Raises:
        WorkflowFailureError: The run failed or was cancelled.
        RPCError: Temporal refused a call, or stayed unreachable for ``outage_limit_s``.
    """
    shown = [""]
    while True:
        try:
            return await _wait_showing(processing, workflow_id, run_id, show, shown)
        except RPCError as exc:
            if not temporal_unavailable(exc):
                raise
            await _wait_for_temporal(processing, workflow_id, exc, outage_limit_s)


async def _wait_showing(
    processing: MatchProcessing, workflow_id: str, run_id: str, show: bool, shown: list[str]
) -> MatchOutput:
    result = asyncio.ensure_future(processing.result(workflow_id, run_id))
    try:
        while not result.done():
            await asyncio.wait({result}, timeout=POLL_S)
            if not show or result.done():
                continue
            progress = await processing.progress(workflow_id, run_id)
            if progress is None:  # no worker answered yet; the next loop asks again
                continue
            text = format_progress(progress)
            if text != shown[0]:
                _say(show, text + "\n")
                shown[0] = text
        return await result
    finally:
        result.cancel()


async def _wait_for_temporal(
    processing: MatchProcessing, workflow_id: str, error: RPCError, limit_s: float
) -> None:
    """Until Temporal describes the workflow again; raises ``error`` after ``limit_s``."""
    address = processing.settings.temporal_address
    _note(f"Temporal at {address} is not answering ({error.message}); waiting for it ...")
    started = time.monotonic()
    delay = RECONNECT_FIRST_S
    while True:
        await asyncio.sleep(delay)
        try:
            await processing.describe(workflow_id)
        except RPCError as again:
            if not temporal_unavailable(again):
                raise
            if time.monotonic() - started > limit_s:
                raise error from again
            delay = min(delay * 2, RECONNECT_MAX_S)
            continue
        _note(f"Temporal answers again after {time.monotonic() - started:.0f} s; following on")
        return


class NoStackError(LookupError):
    """``--stack DIR`` named a directory where no `polyvision up` runs."""


def stack_settings(
    settings: Settings, stack_dir: Path | None = None
) -> tuple[Settings, StackState | None]:
    """The settings to process with: those of the stack running in ``stack_dir``.

    ``stack_dir`` None looks in ``settings.data_dir`` and, when no stack runs there, keeps
    ``settings`` (a deployment configured through ``PV_`` variables).

    Raises:
        NoStackError: ``stack_dir`` was given and no stack runs there, or the stack keeps a
            store on a server whose URL this environment does not set.
    """
    state = running_stack(stack_dir if stack_dir is not None else settings.data_dir)
    if state is None:
        if stack_dir is not None:
            raise NoStackError(
                f"no running `polyvision up` publishes its state in {stack_dir} "
                "(start one with that PV_DATA_DIR, or leave --stack out)"
            )
        return settings, None
    try:
        return state.settings(settings), state
    except ValueError as exc:
        raise NoStackError(str(exc)) from exc


def _quiet_runtime() -> Runtime:
    """An SDK runtime that does not print the Rust core's retry warnings during an outage."""
    return Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
        )
    )


def run_process(
    settings: Settings, request: ProcessRequest, *, stack_dir: Path | None = None
) -> int:
    """The command: 0 when the match was processed, 1 when it failed, 2 for a bad request.

    Args:
        settings: The command's own settings.
        request: What to process.
        stack_dir: The data directory of the `polyvision up` to use (None: ``PV_DATA_DIR``,
            falling back to ``settings`` when no stack runs there).
    """
    from polyvision.storage.metadata import create_engine, session_maker
    from polyvision.temporal.client import connect

    try:
        settings, stack = stack_settings(settings, stack_dir)
    except NoStackError as exc:
        sys.stderr.write(f"polyvision process: {exc}\n")
        return 2
    if stack is not None:
        _say(True, f"stack: {stack.api_url} (data in {stack.data_dir}, pid {stack.pid})")
    elif settings.objects_url.startswith("file://"):
        _note(
            f"no `polyvision up` runs with data in {settings.data_dir}; using this "
            f"environment's stores there and Temporal at {settings.temporal_address} "
            "(--stack DIR names a stack's data directory)"
        )

    async def go() -> int:
        address = settings.temporal_address
        try:
            client = await connect(address, settings.temporal_namespace, _quiet_runtime())
        except RuntimeError as exc:  # the SDK reports a failed connection as RuntimeError
            sys.stderr.write(f"polyvision process: cannot reach Temporal at {address}: {exc}\n")
            return 1
        engine = create_engine(settings.database_url)
        try:
            output = await process_match(
                MatchProcessing(client, settings), session_maker(engine), request
            )
        except (LookupError, ValueError) as exc:
            sys.stderr.write(f"polyvision process: {exc}\n")
            return 2
        except SQLAlchemyError as exc:
            sys.stderr.write(
                f"polyvision process: the metadata store is not ready ({exc}); "
                "run `polyvision db upgrade` or start the stack\n"
            )
            return 1
        except RPCError as exc:
            sys.stderr.write(f"polyvision process: Temporal did not answer: {exc.message}\n")
            return 1
        except WorkflowFailureError as exc:
            cause = str(exc.cause) if exc.cause is not None else str(exc)
            sys.stderr.write(f"polyvision process: the match failed: {cause}\n")
            return 1
        finally:
            await engine.dispose()
        sys.stdout.write(
            f"done: {output.frames} frames in {output.chunks} chunks\n"
            f"HLS master playlist: {output.hls_master_key}\n"
            f"summary: {output.summary_key}\n"
        )
        return 0

    return asyncio.run(go())
