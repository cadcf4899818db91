"""`polyvision process`: upload a recording pair, start its match workflow, show live progress.

The match is started the way an upload through the API starts one (`processing.MatchProcessing`:
the deployment's task-queue suffix, the MatchId/OrganizationId search attributes) and gets a
catalog row in an organization (`processing.catalog`): ``--org`` is an organization's id or a
slug whose organization is found or created (``local`` by default), so the index stage marks
the match ``ready`` and the API lists and serves it to that organization's members.

Running it again with the ``--match-id`` of a match whose workflow is running follows that run;
of a finished match, it uploads the pair again and processes it as the next revision.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import WorkflowFailureError
from temporalio.service import RPCError

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
from workflows.types import STAGES, MatchInput, MatchOutput, MatchProgress

BAR_WIDTH = 24
POLL_S = 1.0

Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class ProcessRequest:
    """What to process and for whom.

    Attributes:
        organization: An organization's id, or the slug of one to find or create.
        match_id: The match (default: a new one).
        title: The match's title in the catalog (default: the two files' names).
    """

    left: Path
    right: Path
    rig: Path
    organization: str = LOCAL_ORGANIZATION
    match_id: uuid.UUID | None = None
    title: str | None = None
    chunk_seconds: float = 10.0
    panorama_scale: float = 1.0


def format_progress(progress: MatchProgress) -> str:
    """One line per stage: a bar of chunks done over total, and the stage's time."""
    lines = [f"stage: {progress.stage}"]
    for name in STAGES:
        entry = progress.stages.get(name)
        if entry is None:
            lines.append(f"  {name:<8} {'.' * BAR_WIDTH}")
            continue
        total = max(entry.total, 1)
        filled = round(BAR_WIDTH * min(entry.done, total) / total)
        took = ""
        if entry.started_at is not None and entry.finished_at is not None:
            took = f" {entry.finished_at - entry.started_at:6.1f} s"
        lines.append(
            f"  {name:<8} {'#' * filled}{'-' * (BAR_WIDTH - filled)} {entry.done}/{entry.total}"
            + took
        )
    return "\n".join(lines)


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
    result = asyncio.ensure_future(processing.result(workflow_id, run_id))
    last = ""
    while not result.done():
        await asyncio.wait({result}, timeout=POLL_S)
        if not show or result.done():
            continue
        progress = await processing.progress(workflow_id, run_id)
        if progress is None:  # no worker answered yet; the next loop asks again
            continue
        text = format_progress(progress)
        if text != last:
            _say(show, text + "\n")
            last = text
    return await result


def run_process(settings: Settings, request: ProcessRequest) -> int:
    """The command: 0 when the match was processed, 1 when it failed, 2 for a bad request."""
    from polyvision.storage.metadata import create_engine, session_maker
    from polyvision.temporal.client import connect

    async def go() -> int:
        client = await connect(settings.temporal_address, settings.temporal_namespace)
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
