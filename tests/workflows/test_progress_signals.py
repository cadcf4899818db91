"""The batch children's progress signals: coalesced, and counted as the per-chunk ones were.

`ChunksDone` replaces one `ChunkDone` per chunk and stage (behind the ``coalesced-progress``
patch): the parent's bookkeeping must come out the same, every chunk must reach it exactly once,
and a batch whose chunks finish within `PROGRESS_INTERVAL_S` of each other must send a handful
of signals, not one per chunk.
"""

from __future__ import annotations

import math
from collections import Counter

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from polyvision.temporal.names import CHUNKS_DONE_SIGNAL
from polyvision.temporal.queues import QueueRole, queue_names
from tests.fixtures.standin_workers import standin_workers
from tests.workflows.standins import StandinActivities, StandinMatch
from workflows.match import (
    PROGRESS_INTERVAL_S,
    ChunksDone,
    MatchWorkflow,
    count_chunk_done,
    workflow_id_for,
)
from workflows.types import MatchInput, MatchProgress, StageProgress

FRAMES = {0: 250, 1: 250, 2: 250, 3: 120}


def _progress() -> MatchProgress:
    """Stitch entered, detect waiting for its first chunk, encode started (as the run sets up)."""
    total = sum(FRAMES.values())
    return MatchProgress(
        stage="stitch",
        stages={
            "stitch": StageProgress(total=4, started_at=100.0, frames_total=total),
            "detect": StageProgress(total=4, frames_total=total),
            "encode": StageProgress(total=4, started_at=500.0, frames_total=total),
        },
    )


def test_a_coalesced_signal_counts_as_its_chunks_one_by_one() -> None:
    """Chunks told together at a time count exactly as the same chunks told alone then."""
    # (time, stage, chunks) as they arrive: coalesced, several chunks per signal.
    arrivals = [
        (110.0, "stitch", [2]),
        (140.0, "stitch", [0, 3]),
        (150.0, "detect", [2, 0]),
        (151.0, "stitch", [1]),
        (190.0, "detect", [1, 3]),
        (510.0, "encode", [0, 1, 2, 3]),
    ]
    alone, together = _progress(), _progress()
    for now, stage, chunks in arrivals:
        for chunk in chunks:
            count_chunk_done(alone, FRAMES, stage, chunk, now)  # one ChunkDone each
        done = ChunksDone(stage, chunks)
        for chunk in done.chunks:  # what the chunks_done handler does
            count_chunk_done(together, FRAMES, done.stage, chunk, now)
    assert together == alone
    stitch, detect, encode = (together.stages[s] for s in ("stitch", "detect", "encode"))
    assert (stitch.done, stitch.frames_done, stitch.finished_at) == (4, 870, 151.0)
    assert (detect.started_at, detect.finished_at, detect.frames_done) == (110.0, 190.0, 870)
    # Encode ends with packaging, not with its last chunk.
    assert (encode.done, encode.frames_done, encode.finished_at) == (4, 870, None)


async def test_a_batch_coalesces_its_chunks_and_the_parent_gets_each_once(
    temporal_client: Client, task_queue: str
) -> None:
    """A 2-minute match in 5 s chunks, 8 per batch (3 batches), stand-ins answering at once."""
    match = StandinMatch(minutes=2.0, fps=25)
    match_input = MatchInput(
        organization_id="o1",
        match_id=f"m-{task_queue}",
        left_key=f"orgs/o1/uploads/m-{task_queue}/left.mp4",
        right_key=f"orgs/o1/uploads/m-{task_queue}/right.mp4",
        rig_key=f"orgs/o1/uploads/m-{task_queue}/rig.json",
        chunk_seconds=5.0,
        chunks_per_batch=8,
        task_queue_suffix=f"-{task_queue}",
    )
    chunks = math.ceil(match.frame_count / round(match_input.chunk_seconds * match.fps))
    batches = math.ceil(chunks / match_input.chunks_per_batch)
    assert (chunks, batches) == (24, 3)
    async with standin_workers(temporal_client, f"-{task_queue}", StandinActivities(match)):
        handle = await temporal_client.start_workflow(
            MatchWorkflow.run,
            match_input,
            id=workflow_id_for(match_input.match_id),
            task_queue=queue_names(f"-{task_queue}")[QueueRole.cpu],
        )
        await handle.result()
        history = await handle.fetch_history()

    converter = temporal_client.data_converter
    received: list[tuple[str, ChunksDone]] = []
    for event in history.events:
        if event.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            continue
        attributes = event.workflow_execution_signaled_event_attributes
        assert attributes.signal_name == CHUNKS_DONE_SIGNAL  # no per-chunk signal any more
        [done] = await converter.decode(attributes.input.payloads, [ChunksDone])
        received.append((attributes.external_workflow_execution.workflow_id, done))

    for stage in ("stitch", "detect", "encode"):
        told = Counter(
            chunk for _, done in received if done.stage == stage for chunk in done.chunks
        )
        assert told == Counter(range(chunks)), stage  # every chunk once
    # Per child and stage: the first chunk alone at once, the rest with the batch's last one,
    # plus one more for each `PROGRESS_INTERVAL_S` the batch's chunks took (a slow machine).
    per_child_stage = Counter((child, done.stage) for child, done in received)
    assert len(per_child_stage) == 3 * batches  # stitch and detect, encode: per batch
    assert all(n >= 2 for n in per_child_stage.values()), per_child_stage
    elapsed = history.events[-1].event_time.ToSeconds() - history.events[0].event_time.ToSeconds()
    assert sum(per_child_stage.values()) <= len(per_child_stage) * (
        2 + elapsed / PROGRESS_INTERVAL_S
    )
    assert len(received) < 3 * chunks
