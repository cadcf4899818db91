"""The one workflow the chaos suite adds: a single stitch chunk, so a frozen worker's attempt can
be watched on its own (hosted by the suite's process, the activity runs on real workers)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.stitch.contracts import StitchChunkInput, StitchChunkOutput
    from polyvision.temporal import names


@dataclass
class StitchOnceInput:
    """One stitch chunk and where and how to run it."""

    chunk: StitchChunkInput
    task_queue: str
    heartbeat_timeout_s: float


@workflow.defn(name="ChaosStitchOnce")
class StitchOnceWorkflow:
    @workflow.run
    async def run(self, input: StitchOnceInput) -> StitchChunkOutput:
        output: StitchChunkOutput = await workflow.execute_activity(
            names.STITCH_CHUNK,
            input.chunk,
            task_queue=input.task_queue,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(seconds=input.heartbeat_timeout_s),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200)),
            result_type=StitchChunkOutput,
        )
        return output
