"""`MatchProcessing` against the real `MatchWorkflow` on the test Temporal server."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError

from polyvision.settings import Settings
from polyvision.temporal.search_attributes import DEVICE_ID, MATCH_ID, ORGANIZATION_ID
from processing import (
    MatchProcessing,
    NotStarted,
    ProcessingEnded,
    ProcessingState,
    ReprocessRefused,
    UnknownStage,
    ui_link,
)
from tests.processing.conftest import started_input, wait_closed, wait_for_stage
from workflows.types import MatchInput


def match_input(
    *, name: str = "pair", device_id: str | None = None, revision: int = 1
) -> MatchInput:
    """A new match's input; the stand-in ingest refuses a pair named "mismatched"."""
    match_id, org_id = str(uuid.uuid4()), str(uuid.uuid4())
    prefix = f"orgs/{org_id}/uploads/{name}"
    return MatchInput(
        organization_id=org_id,
        match_id=match_id,
        left_key=f"{prefix}/left.mp4",
        right_key=f"{prefix}/right.mp4",
        rig_key=f"{prefix}/rig.json",
        device_id=device_id,
        revision=revision,
    )


def test_the_ui_link_names_the_namespace_workflow_and_run(
    processing: MatchProcessing, settings: Settings
) -> None:
    expected = (
        f"http://ui.test:8233/namespaces/{settings.temporal_namespace}"
        "/workflows/match-m1/r1/history"
    )
    assert ui_link(settings, "match-m1", "r1") == expected
    assert processing.ui_link("match-m1", "r1") == expected
    assert MatchProcessing.workflow_id("m1") == "match-m1"


async def test_start_sets_the_queues_and_search_attributes_and_finds_the_running_run(
    processing: MatchProcessing, temporal_client: Client, settings: Settings
) -> None:
    # No worker polls this test's queues: the run waits for its first workflow task.
    device = str(uuid.uuid4())
    given = match_input(device_id=device)
    given.task_queue_suffix = "-not-this-one"  # the client's settings choose the queues
    run_id = await processing.start(given)
    workflow_id = MatchProcessing.workflow_id(given.match_id)
    handle = temporal_client.get_workflow_handle(workflow_id)
    try:
        description = await handle.describe()
        assert description.run_id == run_id
        assert description.task_queue == f"polyvision-cpu{settings.task_queue_suffix}"
        attributes = description.typed_search_attributes
        assert attributes.get(MATCH_ID) == given.match_id
        assert attributes.get(ORGANIZATION_ID) == given.organization_id
        assert attributes.get(DEVICE_ID) == device
        started = await started_input(temporal_client, workflow_id, run_id)
        assert started.task_queue_suffix == settings.task_queue_suffix
        assert (started.match_id, started.left_key) == (given.match_id, given.left_key)

        # A retried start finds the running workflow instead of starting another.
        assert await processing.start(given) == run_id
        assert await processing.current_run_id(workflow_id) == run_id
        run = await processing.describe(workflow_id)
        assert run is not None
        assert (run.workflow_id, run.run_id, run.state) == (
            workflow_id,
            run_id,
            ProcessingState.running,
        )
        assert run.started_at is not None and run.closed_at is None
    finally:
        await handle.terminate("test over")


async def test_without_a_device_no_device_attribute_is_set(
    processing: MatchProcessing, temporal_client: Client
) -> None:
    given = match_input()
    run_id = await processing.start(given)
    handle = temporal_client.get_workflow_handle(MatchProcessing.workflow_id(given.match_id))
    try:
        attributes = (await handle.describe()).typed_search_attributes
        assert attributes.get(MATCH_ID) == given.match_id
        assert attributes.get(DEVICE_ID) is None
        assert run_id
    finally:
        await handle.terminate("test over")


async def test_a_workflow_never_started_is_not_found_and_refuses_actions(
    processing: MatchProcessing,
) -> None:
    workflow_id = MatchProcessing.workflow_id(str(uuid.uuid4()))
    assert await processing.describe(workflow_id) is None
    assert await processing.current_run_id(workflow_id) is None
    with pytest.raises(NotStarted, match="has not started"):
        await processing.cancel(workflow_id, reason="test")
    with pytest.raises(NotStarted):
        await processing.reprocess(workflow_id, "track")
    with pytest.raises(UnknownStage, match="unknown stage 'colour'; one of ingest, stitch"):
        await processing.reprocess(workflow_id, "colour")


async def test_a_running_match_shows_progress_takes_a_reprocess_and_is_cancelled(
    processing: MatchProcessing, workers: None
) -> None:
    given = match_input()
    workflow_id = MatchProcessing.workflow_id(given.match_id)
    run_id = await processing.start(given)
    await wait_for_stage(processing, workflow_id, run_id, "track")

    progress = await processing.progress(workflow_id, run_id)
    assert progress is not None and progress.revision == 1
    assert {name: (s.done, s.total) for name, s in progress.stages.items()} == {
        "ingest": (1, 1),
        "stitch": (3, 3),
        "detect": (3, 3),
        "track": (0, 1),
    }
    with pytest.raises(UnknownStage):
        await processing.reprocess(workflow_id, "colour")
    with pytest.raises(ReprocessRefused, match="has not started yet"):
        await processing.reprocess(workflow_id, "index")
    accepted = await processing.reprocess(workflow_id, "stitch")
    assert (accepted.run_id, accepted.detail, accepted.restarted_from) == (
        run_id,
        "reprocessing from stitch",
        "stitch",
    )
    assert accepted.revision is None and not accepted.new_run
    with pytest.raises(ReprocessRefused, match="already pending"):
        await processing.reprocess(workflow_id, "detect")

    assert await processing.cancel(workflow_id, reason="test") == run_id
    await wait_closed(processing, workflow_id)
    run = await processing.describe(workflow_id)
    assert run is not None and run.state is ProcessingState.cancelled
    assert run.closed_at is not None
    assert await processing.failure(workflow_id, run_id) is None
    with pytest.raises(ProcessingEnded, match=r"has ended \(cancelled\)") as ended:
        await processing.cancel(workflow_id, reason="test")
    assert ended.value.state is ProcessingState.cancelled
    # Finished, and nobody said how to build a new run.
    with pytest.raises(ProcessingEnded):
        await processing.reprocess(workflow_id, "ingest")


async def test_a_finished_match_is_processed_again_as_its_next_revision(
    processing: MatchProcessing, temporal_client: Client, workers: None, gate: asyncio.Event
) -> None:
    gate.set()
    given = match_input()
    workflow_id = MatchProcessing.workflow_id(given.match_id)
    first = await processing.start(given)
    assert (await processing.result(workflow_id, first)).revision == 1
    run = await processing.describe(workflow_id)
    assert run is not None and run.state is ProcessingState.completed

    asked: list[str] = []

    async def next_run() -> MatchInput:
        asked.append("next")
        return dataclasses.replace(given, revision=2)

    again = await processing.reprocess(workflow_id, "track", next_run=next_run)
    assert asked == ["next"]
    assert again.new_run and again.revision == 2 and again.restarted_from == "ingest"
    assert again.detail == "processing again as revision 2, from ingest"
    assert again.run_id != first
    assert (await processing.result(workflow_id, again.run_id)).revision == 2
    description = await temporal_client.get_workflow_handle(
        workflow_id, run_id=again.run_id
    ).describe()
    assert description.typed_search_attributes.get(MATCH_ID) == given.match_id
    assert description.status is WorkflowExecutionStatus.COMPLETED


async def test_a_failed_run_says_why(processing: MatchProcessing, workers: None) -> None:
    given = match_input(name="mismatched")
    workflow_id = MatchProcessing.workflow_id(given.match_id)
    run_id = await processing.start(given)
    with pytest.raises(WorkflowFailureError):
        await processing.result(workflow_id, run_id)
    run = await processing.describe(workflow_id)
    assert run is not None and run.state is ProcessingState.failed
    failure = await processing.failure(workflow_id, run_id)
    assert failure is not None and "frame counts differ: left 100, right 50" in failure
