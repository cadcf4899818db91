"""A 120-minute match keeps every workflow history under Temporal's warning thresholds.

Temporal warns when a history passes 10,240 events or 10 MB and terminates the workflow at
51,200 events or 50 MB (DESIGN.md). `MatchWorkflow` splits the per-chunk stages into child
workflows, one per batch of chunks, and the children coalesce their progress signals to the
parent (`ChunksDone`), to stay far from that; this test plays a full-length match (720 chunks of
10 s at 25 fps, the default 60 chunks per batch) through the real workflows with stand-in
activities that return at once, reprocessed twice from stitch (three passes in the parent's
history), and measures every history it leaves.

How many workflow tasks a history holds depends on timing: stand-ins finish so fast that many
signals and completions share one workflow task, while real stages, minutes apart, each wake the
workflow on its own. So besides the measured count the test also checks the worst case, every
wake-up in a workflow task of its own, which no timing can exceed for the events recorded.

How many progress signals the parent gets depends on timing too: a batch sends the chunks that
finish within `PROGRESS_INTERVAL_S` of its last signal together. The stand-ins finish a batch's
chunks within seconds, as a GPU that does a stage of a chunk in a few seconds would come close
to; chunks more than 30 s apart are sent one by one, as before the coalescing. The report also
prints that case's worst (``per-chunk worst``: every chunk and stage a signal and a workflow task
of its own), which three passes do not keep under the warning: a pass that slow takes hours.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Worker

from polyvision.temporal import names
from polyvision.temporal.queues import QueueRole, queue_names
from tests.workflows.standins import StandinActivities, StandinMatch
from workflows.match import (
    MatchWorkflow,
    RenderBatchWorkflow,
    StitchDetectBatchWorkflow,
    workflow_id_for,
)
from workflows.types import MatchInput, ReprocessRequest

EVENTS_WARNING = 10_240
BYTES_WARNING = 10 * 1024 * 1024
PASSES = 3
"""The first pass and two reprocesses from stitch."""

# Events that make the server schedule a workflow task (the workflow has something new to see).
# Scheduled/initiated events are the opposite: results of a workflow task's commands.
_WAKE_UPS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
    EventType.EVENT_TYPE_TIMER_FIRED,
    EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED,
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED,
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT,
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED,
    EventType.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_SIGNALED,
    EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED,
}
_WORKFLOW_TASK_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
}


@dataclass(frozen=True)
class HistorySize:
    """What one workflow's history weighs.

    Attributes:
        workflow_id: The workflow.
        events: Events recorded.
        worst_case_events: Events if every wake-up had had a workflow task (scheduled, started,
            completed) of its own, as when stages finish minutes apart.
        proto_bytes: Serialized protobuf size, what the server's size limit counts.
        json_bytes: Size of the JSON export (payloads base64): a larger, conservative figure.
    """

    workflow_id: str
    events: int
    worst_case_events: int
    proto_bytes: int
    json_bytes: int

    @classmethod
    def of(cls, history: WorkflowHistory) -> HistorySize:
        """Measure a fetched history."""
        others = [e for e in history.events if e.event_type not in _WORKFLOW_TASK_EVENTS]
        wake_ups = sum(1 for e in others if e.event_type in _WAKE_UPS)
        return cls(
            workflow_id=history.workflow_id,
            events=len(history.events),
            worst_case_events=len(others) + 3 * wake_ups,
            proto_bytes=History(events=history.events).ByteSize(),
            json_bytes=len(history.to_json()),
        )

    def line(self) -> str:
        """One row of the printed report."""
        return (
            f"{self.workflow_id:<52} {self.events:>7} {self.worst_case_events:>7} "
            f"{self.proto_bytes:>10} {self.json_bytes:>10}"
        )


@asynccontextmanager
async def standin_workers(
    client: Client, suffix: str, activities: StandinActivities
) -> AsyncIterator[None]:
    """Workers on the suffixed cpu and gpu queues, split like the real registry's.

    Slots are generous so that the 720 chunks of a stage run all at once: the stand-ins do no
    work, and the test's time is the server's and the workflows' alone.
    """
    queues = queue_names(suffix)
    async with AsyncExitStack() as stack:
        for role in (QueueRole.cpu, QueueRole.gpu):
            workflows: Sequence[type] = ()
            if role is QueueRole.cpu:
                workflows = (MatchWorkflow, StitchDetectBatchWorkflow, RenderBatchWorkflow)
            worker = Worker(
                client,
                task_queue=queues[role],
                workflows=workflows,
                activities=activities.for_role(role),
                max_concurrent_activities=200,
                max_concurrent_workflow_tasks=100,
            )
            await stack.enter_async_context(worker)
        yield


@pytest.mark.timeout(900)  # three passes of 2,160 chunk activities on two shared cores
async def test_a_120_minute_match_reprocessed_twice_keeps_every_history_under_the_warning(
    temporal_client: Client, task_queue: str
) -> None:
    """Three full passes in one run: the match, then ``reprocess("stitch")`` twice.

    Reprocessing from stitch (the earliest stage a reprocess redoes per chunk) runs every stage
    after ingest again in the same workflow, so the parent's history holds three passes. Each
    reprocess is sent while the pass before it is at its last step (the stand-in ``index``
    waits for the test), the latest moment, when the whole pass is in the history. The parent
    is also measured there after the first pass; the children (their ids are reused by each
    pass) are measured after the last one.
    """
    match = StandinMatch(minutes=120.0, fps=25)
    match_input = MatchInput(
        organization_id="o1",
        match_id=f"m-{task_queue}",
        left_key=f"orgs/o1/uploads/m-{task_queue}/left.mp4",
        right_key=f"orgs/o1/uploads/m-{task_queue}/right.mp4",
        rig_key=f"orgs/o1/uploads/m-{task_queue}/rig.json",
        chunk_seconds=10.0,
        task_queue_suffix=f"-{task_queue}",
    )
    chunks = math.ceil(match.frame_count / round(match_input.chunk_seconds * match.fps))
    batches = math.ceil(chunks / match_input.chunks_per_batch)
    assert (chunks, batches) == (720, 12)  # the defaults this test is about

    # The stand-in index hands the test a future and waits for it: the run is held at its last
    # step until the test has measured it and sent its reprocess.
    at_index: asyncio.Queue[asyncio.Future[None]] = asyncio.Queue()

    async def hold_at_index() -> None:
        release = asyncio.get_running_loop().create_future()
        await at_index.put(release)
        await release

    workflow_id = workflow_id_for(match_input.match_id)
    started = time.monotonic()
    passes: list[float] = []
    activities = StandinActivities(match, before_index=hold_at_index)
    async with standin_workers(temporal_client, f"-{task_queue}", activities):
        handle = await temporal_client.start_workflow(
            MatchWorkflow.run,
            match_input,
            id=workflow_id,
            task_queue=queue_names(f"-{task_queue}")[QueueRole.cpu],
        )
        for number in range(PASSES):
            release = await asyncio.wait_for(at_index.get(), timeout=600)
            passes.append(time.monotonic() - started)
            if number == 0:
                one_pass = HistorySize.of(await handle.fetch_history())
            if number < PASSES - 1:
                await handle.execute_update(
                    names.REPROCESS_UPDATE, ReprocessRequest("stitch"), result_type=str
                )
            release.set_result(None)
        result = await handle.result()
        progress = await handle.query(MatchWorkflow.progress)  # a worker answers queries
    elapsed = time.monotonic() - started
    assert (result.chunks, result.frames) == (chunks, match.frame_count)
    for stage in ("stitch", "detect", "encode"):
        entry = progress.stages[stage]
        assert (entry.done, entry.frames_done) == (chunks, match.frame_count), (stage, entry)

    # The children's ids are fixed by the workflow (revision 1, one per batch and kind); each
    # pass reuses them, and the latest run (the third pass's) is the one fetched.
    children = [
        f"{workflow_id}-r{match_input.revision}-{kind}-{number:04d}"
        for kind in ("stitch", "render")
        for number in range(batches)
    ]
    histories = await asyncio.gather(
        *(
            temporal_client.get_workflow_handle(wid).fetch_history()
            for wid in [workflow_id, *children]
        )
    )
    sizes = [HistorySize.of(history) for history in histories]
    signals = sum(
        1
        for event in histories[0].events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    )

    parent = sizes[0]
    stitch = max(sizes[1 : 1 + batches], key=lambda s: s.worst_case_events)
    render = max(sizes[1 + batches :], key=lambda s: s.worst_case_events)
    # Every chunk of every stage of every pass a signal of its own, with its workflow task.
    per_chunk_worst = parent.worst_case_events + 4 * (3 * chunks * PASSES - signals)
    laps = ", ".join(f"{t:.0f}s" for t in passes)
    print(
        f"\n120-minute match, {chunks} chunks, {batches} batches per kind, {PASSES} passes "
        f"(at index after {laps}), run took {elapsed:.1f}s; parent signals: {signals}, "
        f"per-chunk worst: {per_chunk_worst} events"
        f"\n{'workflow':<52} {'events':>7} {'worst':>7} {'proto B':>10} {'json B':>10}"
    )
    print(replace(one_pass, workflow_id="(parent, after the first pass)").line())
    for size in (parent, stitch, render):
        print(size.line())

    for size in [one_pass, *sizes]:
        assert size.events < EVENTS_WARNING, size
        assert size.worst_case_events < EVENTS_WARNING, size
        assert max(size.proto_bytes, size.json_bytes) < BYTES_WARNING, size
