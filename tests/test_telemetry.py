"""Logs written inside an activity carry the ids that lead an operator to its run."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
import structlog
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from polyvision.telemetry import LoggingInterceptor, configure_logging


@activity.defn
def bound_log_fields() -> dict[str, str]:
    """A synchronous activity (run in a thread) that logs and reports what is bound."""
    structlog.get_logger("test.activity").info("inside the activity")
    return {key: str(value) for key, value in structlog.contextvars.get_contextvars().items()}


@activity.defn
async def bound_log_fields_async() -> dict[str, str]:
    return {key: str(value) for key, value in structlog.contextvars.get_contextvars().items()}


# Not sandboxed: the sandbox would re-import this test module and its fixtures.
@workflow.defn(sandboxed=False)
class LogFieldsWorkflow:
    @workflow.run
    async def run(self) -> list[dict[str, str]]:
        sync_fields = await workflow.execute_activity(
            bound_log_fields, start_to_close_timeout=timedelta(seconds=30)
        )
        async_fields = await workflow.execute_activity(
            bound_log_fields_async, start_to_close_timeout=timedelta(seconds=30)
        )
        return [sync_fields, async_fields]


async def test_activity_logs_are_bound_to_workflow_and_activity(
    temporal_client: Client, task_queue: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    configure_logging("INFO", json=True)
    try:
        with ThreadPoolExecutor(2) as executor:
            async with Worker(
                temporal_client,
                task_queue=task_queue,
                workflows=[LogFieldsWorkflow],
                activities=[bound_log_fields, bound_log_fields_async],
                activity_executor=executor,
                interceptors=[LoggingInterceptor()],
            ):
                handle = await temporal_client.start_workflow(
                    LogFieldsWorkflow.run, id=f"log-{task_queue}", task_queue=task_queue
                )
                sync_fields, async_fields = await handle.result()
    finally:
        logging.getLogger().handlers.clear()
    for fields, activity_type in (
        (sync_fields, "bound_log_fields"),
        (async_fields, "bound_log_fields_async"),
    ):
        assert fields["workflow_id"] == f"log-{task_queue}"
        assert fields["run_id"] == handle.result_run_id
        assert fields["activity"] == activity_type
        assert fields["attempt"] == "1"
        assert fields["task_queue"] == task_queue
    # The JSON line itself carries them, so a log search finds the run.
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "{" in line]
    inside = [line for line in lines if line.get("event") == "inside the activity"]
    assert inside and inside[0]["workflow_id"] == f"log-{task_queue}"
    # Nothing leaks once the activity is over.
    assert "workflow_id" not in structlog.contextvars.get_contextvars()
