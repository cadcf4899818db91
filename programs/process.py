"""`polyvision process`: upload a recording pair, start its match workflow, show live progress."""

from __future__ import annotations

import asyncio
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client, WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy

from polyvision.settings import Settings
from polyvision.storage.objects import open_object_store
from polyvision.temporal.queues import CPU_QUEUE
from workflows.match import MatchWorkflow, workflow_id_for
from workflows.types import STAGES, MatchInput, MatchOutput, MatchProgress

BAR_WIDTH = 24


@dataclass(frozen=True)
class ProcessRequest:
    """What to process and as whom."""

    left: Path
    right: Path
    rig: Path
    organization_id: str = "local"
    match_id: str | None = None
    chunk_seconds: float = 10.0
    panorama_scale: float = 1.0


def ui_link(settings: Settings, workflow_id: str, run_id: str) -> str:
    """The Temporal UI page of a run."""
    return (
        f"{settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}"
        f"/workflows/{workflow_id}/{run_id}/history"
    )


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


async def upload_pair(settings: Settings, request: ProcessRequest, match_id: str) -> dict[str, str]:
    """Put the two recordings and the rig in the object store; returns their keys."""
    keys: dict[str, str] = {}
    async with open_object_store(
        settings.objects_url, secret=settings.secret, public_base_url=settings.api_public_url
    ) as objects:
        for name, path in (("left", request.left), ("right", request.right), ("rig", request.rig)):
            key = f"orgs/{request.organization_id}/uploads/{match_id}/{name}{path.suffix}"
            await objects.upload_file(key, path)
            keys[name] = key
    return keys


async def process_match(
    client: Client, settings: Settings, request: ProcessRequest, *, show: bool = True
) -> MatchOutput:
    """Upload, start (or join) the match workflow, print its progress until it ends."""
    match_id = request.match_id or uuid.uuid4().hex[:12]
    keys = await upload_pair(settings, request, match_id)
    workflow_id = workflow_id_for(match_id)
    handle = await client.start_workflow(
        MatchWorkflow.run,
        MatchInput(
            organization_id=request.organization_id,
            match_id=match_id,
            left_key=keys["left"],
            right_key=keys["right"],
            rig_key=keys["rig"],
            chunk_seconds=request.chunk_seconds,
            panorama_scale=request.panorama_scale,
        ),
        id=workflow_id,
        task_queue=CPU_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    run_id = handle.first_execution_run_id or handle.result_run_id or ""
    if show:
        sys.stdout.write(f"match {match_id}: {ui_link(settings, workflow_id, run_id)}\n")
    result = asyncio.ensure_future(handle.result())
    last = ""
    while not result.done():
        await asyncio.wait({result}, timeout=1.0)
        if show:
            try:
                text = format_progress(await handle.query(MatchWorkflow.progress))
            except Exception:  # a query can race the run's end; the next loop shows the result
                continue
            if text != last:
                sys.stdout.write(text + "\n\n")
                sys.stdout.flush()
                last = text
    return await result


def run_process(settings: Settings, request: ProcessRequest) -> int:
    """The command: 0 when the match was processed."""
    from polyvision.temporal.client import connect

    async def go() -> int:
        client = await connect(settings.temporal_address, settings.temporal_namespace)
        try:
            output = await process_match(client, settings, request)
        except WorkflowFailureError as exc:
            cause = str(exc.cause) if exc.cause is not None else str(exc)
            sys.stderr.write(f"polyvision process: the match failed: {cause}\n")
            return 1
        sys.stdout.write(
            f"done: {output.frames} frames in {output.chunks} chunks\n"
            f"HLS master playlist: {output.hls_master_key}\n"
            f"summary: {output.summary_key}\n"
        )
        return 0

    return asyncio.run(go())
