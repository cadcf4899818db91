"""The retention schedule on the dev server: created once, updated in place, and a triggered
run expires a match through a real worker and real stores."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleOverlapPolicy,
    WorkflowHandle,
)
from temporalio.worker import Worker

from activities.retention.activity import RetentionActivities
from polyvision.storage.analytics import AnalyticsStore
from polyvision.storage.metadata.models import MatchStatus
from polyvision.storage.objects import ObjectStore
from polyvision.temporal import names
from polyvision.temporal.schedules import (
    RETENTION_EVERY,
    RETENTION_OFFSET,
    ensure_retention_schedule,
)
from tests.fixtures.temporal import TemporalTestServer
from tests.retention.test_activity import _catalog, _organization, _present, _seed
from workflows.retention import RetentionOutput, RetentionWorkflow


async def _first_run(client: Client, schedule_id: str) -> WorkflowHandle[Any, RetentionOutput]:
    handle = client.get_schedule_handle(schedule_id)
    for _ in range(200):
        described = await handle.describe()
        if described.info.recent_actions:
            action = described.info.recent_actions[0].action
            assert isinstance(action, ScheduleActionExecutionStartWorkflow)
            return client.get_workflow_handle(
                action.workflow_id,
                run_id=action.first_execution_run_id,
                result_type=RetentionOutput,
            )
        await asyncio.sleep(0.1)
    raise AssertionError("the triggered schedule started no workflow")


async def test_the_schedule_is_created_described_and_runs_retention(
    temporal_server: TemporalTestServer,
    temporal_client: Client,
    task_queue: str,
    objects: ObjectStore,
    analytics: AnalyticsStore,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    schedule_id = f"retention-{task_queue}"
    namespace = temporal_server.namespace
    assert await ensure_retention_schedule(
        temporal_client, task_queue, namespace=namespace, schedule_id=schedule_id
    )
    handle = temporal_client.get_schedule_handle(schedule_id)
    try:
        await handle.pause(note="an operator paused it")
        # Applying again updates in place and keeps the operator's pause.
        assert not await ensure_retention_schedule(
            temporal_client, task_queue, namespace=namespace, schedule_id=schedule_id
        )
        described = await handle.describe()
        schedule = described.schedule
        action = schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert (action.workflow, action.task_queue) == (names.RETENTION_WORKFLOW, task_queue)
        assert action.args == []
        [interval] = schedule.spec.intervals
        assert (interval.every, interval.offset) == (RETENTION_EVERY, RETENTION_OFFSET)
        assert timedelta(days=1) == RETENTION_EVERY
        assert schedule.policy.overlap is ScheduleOverlapPolicy.SKIP
        assert schedule.state.paused
        await handle.unpause()

        org = await _organization(sessions, retention_days=30)
        old = await _seed(sessions, objects, analytics, org, days_old=40)
        fresh = await _seed(sessions, objects, analytics, org, days_old=1)
        acts = RetentionActivities(objects, analytics, sessions)
        async with Worker(
            temporal_client,
            task_queue=task_queue,
            workflows=[RetentionWorkflow],
            activities=[acts.expire_matches],
        ):
            await handle.trigger()
            run = await _first_run(temporal_client, schedule_id)
            result = await run.result()
        assert [m.match_id for m in result.expired] == [old.match_id]
        assert (result.batches, result.more) == (1, False)
        assert await _catalog(sessions, old) == (MatchStatus.expired, None, 0)
        assert not any(await _present(objects, old))
        assert all(await _present(objects, fresh))
        assert (await _catalog(sessions, fresh))[0] is MatchStatus.ready
    finally:
        await handle.delete()
