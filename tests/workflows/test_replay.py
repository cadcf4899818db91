"""Replay tests, a release gate: this commit's workflow code must replay real recorded histories.

Every ``histories/*.json`` (recorded by ``python -m tests.workflows.record_histories`` from real
runs on a dev server, named ``{workflow_id}.json``) is replayed with the SDK's `Replayer` and the
same data converter and sandbox the workers use. A failure here means workflows running in
production when this code deploys would fail their next workflow task: put the change behind
``workflow.patched`` instead of re-recording. One more test proves the gate bites: a history
replayed against a changed MatchWorkflow must raise `NondeterminismError`.

Replay executes no activities, so nothing here needs a server, a store or the detector model.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, WorkflowReplayResult

from polyvision.temporal import names
from polyvision.temporal.search_attributes import MATCH_ID, ORGANIZATION_ID, PIPELINE_STAGE
from workflows.health import HealthCheckWorkflow
from workflows.match import (
    MatchWorkflow,
    RenderBatchWorkflow,
    StitchDetectBatchWorkflow,
    workflow_id_for,
)

with workflow.unsafe.imports_passed_through():
    from activities.stitch.activity import StitchActivities
    from activities.stitch.contracts import StitchPrepareInput
    from workflows.types import MatchInput, MatchOutput

HISTORIES = Path(__file__).resolve().parent / "histories"
WORKFLOWS: list[type] = [
    MatchWorkflow,
    StitchDetectBatchWorkflow,
    RenderBatchWorkflow,
    HealthCheckWorkflow,
]

COMPLETED = workflow_id_for("replay-completed")
REPROCESS = workflow_id_for("replay-reprocess")
INGEST_FAILED = workflow_id_for("replay-ingest-failed")
COALESCED = workflow_id_for("replay-coalesced")
# What the recorder writes; a history lost in a re-recording must not go unnoticed.
EXPECTED = {
    COMPLETED,
    f"{COMPLETED}-r1-stitch-0000",
    f"{COMPLETED}-r1-render-0000",
    REPROCESS,
    INGEST_FAILED,
    "health-replay",
    COALESCED,
    f"{COALESCED}-r1-stitch-0000",
    f"{COALESCED}-r1-render-0000",
}


def _history_paths() -> list[Path]:
    return sorted(HISTORIES.glob("*.json"))


def _load(workflow_id: str) -> WorkflowHistory:
    """A recorded history; its file is named after the workflow id, which replay needs (child
    workflow ids are derived from it and checked against the recorded commands)."""
    return WorkflowHistory.from_json(workflow_id, (HISTORIES / f"{workflow_id}.json").read_text())


@contextlib.contextmanager
def _unfinished_handlers_are_errors() -> Iterator[None]:
    """Turn the SDK's unfinished-handler warnings into errors for the block.

    The SDK warns (`UnfinishedUpdateHandlersWarning`, `UnfinishedSignalHandlersWarning`) when a
    workflow completes while handlers with `HandlerUnfinishedPolicy.WARN_AND_ABANDON` still
    run; raised as errors they fail the workflow task, hence the replay. Explicit here rather
    than left to pytest's ``filterwarnings = error``, which a config change could relax.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", workflow.UnfinishedUpdateHandlersWarning)
        warnings.simplefilter("error", workflow.UnfinishedSignalHandlersWarning)
        yield


async def _replay(
    history: WorkflowHistory, workflows: list[type], *, raise_on_failure: bool
) -> WorkflowReplayResult:
    """Replay one history with the workers' data converter and default (sandboxed) runner."""
    # Our own executor, shut down afterwards: the Replayer's default one is never shut down.
    with ThreadPoolExecutor(max_workers=1) as executor, _unfinished_handlers_are_errors():
        replayer = Replayer(
            workflows=workflows,
            data_converter=pydantic_data_converter,
            workflow_task_executor=executor,
        )
        return await replayer.replay_workflow(history, raise_on_replay_failure=raise_on_failure)


def test_every_recorded_history_is_there() -> None:
    """The recorder's full set is committed (a missing file would silently shrink the gate)."""
    assert {path.stem for path in _history_paths()} >= EXPECTED


def test_the_histories_show_what_they_are_meant_to() -> None:
    """The completed run completed, the reprocess run took its update, the ingest run failed."""

    def types(workflow_id: str) -> list[EventType.ValueType]:
        return [event.event_type for event in _load(workflow_id).events]

    completed = types(COMPLETED)
    assert completed[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    assert completed.count(EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED) == 4
    reprocess = types(REPROCESS)
    assert reprocess[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED in reprocess
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED in reprocess
    failed = _load(INGEST_FAILED).events
    assert failed[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
    cause = failed[-1].workflow_execution_failed_event_attributes.failure.cause
    assert cause.application_failure_info.type == "RecordingMismatch"
    assert cause.application_failure_info.non_retryable


def test_both_kinds_of_progress_signal_are_replayed() -> None:
    """The completed run's children (recorded before the ``coalesced-progress`` patch) sent one
    ``chunk_done`` per chunk; the coalesced run's children sent ``chunks_done``, with the patch
    marker and the timers that hold chunks back."""

    def signals(workflow_id: str) -> list[str]:
        return [
            event.workflow_execution_signaled_event_attributes.signal_name
            for event in _load(workflow_id).events
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        ]

    assert set(signals(COMPLETED)) == {names.CHUNK_DONE_SIGNAL}
    assert set(signals(COALESCED)) == {names.CHUNKS_DONE_SIGNAL}
    child = [event.event_type for event in _load(f"{COALESCED}-r1-stitch-0000").events]
    assert EventType.EVENT_TYPE_MARKER_RECORDED in child
    assert EventType.EVENT_TYPE_TIMER_STARTED in child


@pytest.mark.parametrize("path", _history_paths(), ids=lambda path: path.stem)
async def test_a_recorded_history_replays(path: Path) -> None:
    """Today's workflow code makes exactly the recorded commands, with no unfinished handlers."""
    result = await _replay(_load(path.stem), WORKFLOWS, raise_on_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure!r}"


@workflow.defn(name="MatchWorkflow", sandboxed=False)
class MatchWorkflowWithoutIngest:
    """MatchWorkflow as changed without `workflow.patched`: ingest skipped, stitch prepared first.

    Same name, same search attribute upserts, then a different first activity: the kind of
    change the replay gate exists to catch.
    """

    @workflow.run
    async def run(self, input: MatchInput) -> MatchOutput:
        workflow.upsert_search_attributes(
            [MATCH_ID.value_set(input.match_id), ORGANIZATION_ID.value_set(input.organization_id)]
        )
        workflow.upsert_search_attributes([PIPELINE_STAGE.value_set("stitch")])
        await workflow.execute_activity_method(
            StitchActivities.prepare,
            StitchPrepareInput(
                input.organization_id,
                input.match_id,
                input.revision,
                input.rig_key,
                input.panorama_scale,
            ),
            task_queue="polyvision-cpu" + input.task_queue_suffix,
            start_to_close_timeout=timedelta(minutes=10),
        )
        raise AssertionError("replay must stop at the mismatched activity")


async def test_a_changed_match_workflow_is_nondeterministic() -> None:
    """Replaying the completed run against the changed class fails with NondeterminismError."""
    with pytest.raises(
        workflow.NondeterminismError, match="Activity type of scheduled event 'ingest'"
    ):
        await _replay(_load(COMPLETED), [MatchWorkflowWithoutIngest], raise_on_failure=True)
