"""Temporal schedules Polyvision keeps on its namespace: the daily retention run.

Retention, one rule for every store (`activities.retention.policy`): a match's objects, its
analytics rows and its catalog assets go ``Organization.retention_days`` after the match was
created, by the ``RetentionWorkflow`` this schedule starts once a day (03:00 UTC). The catalog
keeps the match row, marked ``expired``.

How the other retentions stand to it, a fixed relation checked by the tests:

- organization retention is at most ``MAX_RETENTION_DAYS`` (90 days);
- the analytics tables' TTL (``ingested_at + 90 days``) is a backstop equal to that maximum:
  rows are written after their match was created, so the schedule always removes them first;
- the Temporal namespace's workflow-history retention (``temporal/namespace.yaml``,
  ``retention_days``) is at least ``MAX_RETENTION_DAYS``: the history of a match's workflow
  stays inspectable for as long as any organization may keep the match's data, and each
  retention run's history (which matches it expired) is kept as long as the longest retention.
  `namespace_retention_covers` states the rule; `ensure_retention_schedule` logs a warning
  where a namespace breaks it.
"""

from __future__ import annotations

from datetime import timedelta

import structlog
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from polyvision.storage.metadata.models import MAX_RETENTION_DAYS
from polyvision.temporal import names
from polyvision.temporal.config import NamespaceConfig

log = structlog.get_logger(__name__)

RETENTION_SCHEDULE_ID = "polyvision-retention"
"""The schedule's id (one per namespace); its runs' workflow ids start with it too."""

RETENTION_EVERY = timedelta(days=1)
RETENTION_OFFSET = timedelta(hours=3)
"""Daily, at 03:00 UTC (interval specs count from the Unix epoch)."""


def namespace_retention_covers(config: NamespaceConfig) -> bool:
    """Whether the namespace keeps histories at least as long as any organization keeps data."""
    return config.retention >= timedelta(days=MAX_RETENTION_DAYS)


def retention_schedule(task_queue: str) -> Schedule:
    """The retention schedule: `RetentionWorkflow` daily on ``task_queue`` (the cpu queue).

    A run still going when the next is due makes that one skip (never two at once); a run
    missed while the server was down starts when it is back, within a day.
    """
    return Schedule(
        action=ScheduleActionStartWorkflow(
            # No argument: the workflow's defaults (`workflows.retention.RetentionInput`) apply;
            # this package sits below the workflows and does not import them.
            names.RETENTION_WORKFLOW,
            id=RETENTION_SCHEDULE_ID,
            task_queue=task_queue,
            execution_timeout=timedelta(hours=23),
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=RETENTION_EVERY, offset=RETENTION_OFFSET)]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=RETENTION_EVERY),
        state=ScheduleState(
            note="Polyvision retention: expires matches past their organization's retention."
        ),
    )


async def ensure_retention_schedule(
    client: Client,
    task_queue: str,
    *,
    namespace: NamespaceConfig | None = None,
    schedule_id: str = RETENTION_SCHEDULE_ID,
) -> bool:
    """Create the retention schedule on the client's namespace, or bring it in line.

    Idempotent: run on every start of the stack and every ``polyvision temporal apply``. An
    existing schedule keeps its paused state (an operator may have paused it) and gets the
    current action, spec and policy.

    Args:
        client: A client on the namespace the workers serve.
        task_queue: The cpu queue (with the deployment's suffix).
        namespace: The namespace's config, to check the retention rule against; not checked
            if None.
        schedule_id: The schedule's id (tests use their own).

    Returns:
        True if the schedule was created, False if an existing one was updated.
    """
    if namespace is not None and not namespace_retention_covers(namespace):
        log.warning(
            "temporal.retention.namespace_shorter",
            namespace=namespace.name,
            namespace_retention_days=namespace.retention.days,
            max_organization_retention_days=MAX_RETENTION_DAYS,
        )
    wanted = retention_schedule(task_queue)
    try:
        await client.create_schedule(schedule_id, wanted)
    except ScheduleAlreadyRunningError:
        pass
    else:
        log.info("temporal.schedule.created", schedule_id=schedule_id, task_queue=task_queue)
        return True

    def keep_state(current: ScheduleUpdateInput) -> ScheduleUpdate:
        state = current.description.schedule.state
        wanted.state.paused = state.paused
        wanted.state.note = state.note or wanted.state.note
        return ScheduleUpdate(schedule=wanted)

    await client.get_schedule_handle(schedule_id).update(keep_state)
    log.info("temporal.schedule.updated", schedule_id=schedule_id, task_queue=task_queue)
    return False
