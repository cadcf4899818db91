"""A 120-minute match keeps every workflow history under Temporal's warning thresholds.

Temporal warns when a history passes 10,240 events or 10 MB and terminates the workflow at
51,200 events or 50 MB (DESIGN.md). `MatchWorkflow` splits the per-chunk stages into child
workflows, one per batch of chunks, to stay far from that; this test plays a full-length match
(720 chunks of 10 s at 25 fps, the default 60 chunks per batch) through the real workflows with
stand-in activities that return at once, and measures every history it leaves.

How many workflow tasks a history holds depends on timing: stand-ins finish so fast that many
signals and completions share one workflow task, while real stages, minutes apart, each wake the
workflow on its own. So besides the measured count the test also checks the worst case, every
wake-up in a workflow task of its own, which no timing can exceed.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Worker

from polyvision.temporal.queues import QueueRole, queue_names
from tests.workflows.standins import StandinActivities, StandinMatch
from workflows.match import (
    MatchWorkflow,
    RenderBatchWorkflow,
    StitchDetectBatchWorkflow,
    workflow_id_for,
)
from workflows.types import MatchInput

EVENTS_WARNING = 10_240
BYTES_WARNING = 10 * 1024 * 1024

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
    names = queue_names(suffix)
    async with AsyncExitStack() as stack:
        for role in (QueueRole.cpu, QueueRole.gpu):
            workflows: Sequence[type] = ()
            if role is QueueRole.cpu:
                workflows = (MatchWorkflow, StitchDetectBatchWorkflow, RenderBatchWorkflow)
            worker = Worker(
                client,
                task_queue=names[role],
                workflows=workflows,
                activities=activities.for_role(role),
                max_concurrent_activities=200,
                max_concurrent_workflow_tasks=100,
            )
            await stack.enter_async_context(worker)
        yield


async def test_a_120_minute_match_keeps_every_history_under_the_warning(
    temporal_client: Client, task_queue: str
) -> None:
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

    workflow_id = workflow_id_for(match_input.match_id)
    started = time.monotonic()
    async with standin_workers(temporal_client, f"-{task_queue}", StandinActivities(match)):
        handle = await temporal_client.start_workflow(
            MatchWorkflow.run,
            match_input,
            id=workflow_id,
            task_queue=queue_names(f"-{task_queue}")[QueueRole.cpu],
        )
        result = await handle.result()
    elapsed = time.monotonic() - started
    assert (result.chunks, result.frames) == (chunks, match.frame_count)

    # The children's ids are fixed by the workflow (revision 1, one per batch and kind).
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

    parent = sizes[0]
    stitch = max(sizes[1 : 1 + batches], key=lambda s: s.worst_case_events)
    render = max(sizes[1 + batches :], key=lambda s: s.worst_case_events)
    print(
        f"\n120-minute match, {chunks} chunks, {batches} batches per kind, run took {elapsed:.1f}s"
        f"\n{'workflow':<52} {'events':>7} {'worst':>7} {'proto B':>10} {'json B':>10}"
    )
    for size in (parent, stitch, render):
        print(size.line())

    for size in sizes:
        assert size.events < EVENTS_WARNING, size
        assert size.worst_case_events < EVENTS_WARNING, size
        assert max(size.proto_bytes, size.json_bytes) < BYTES_WARNING, size
