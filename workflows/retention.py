"""Retention workflow: expire the matches past their organization's retention, in batches.

Started daily by the ``polyvision-retention`` schedule (`polyvision.temporal.schedules`). The
rule (`activities.retention.policy`) is one for both stores: a match's objects and its
analytics rows go together, ``Organization.retention_days`` after the match was created, and
the catalog keeps the match as ``expired``. Deterministic orchestration only: the activity is
called by its name with its light contract types, and the instant it judges at is the
workflow's time, so a retried activity judges the same matches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.retention.contracts import (
        ExpiredMatch,
        ExpireMatchesInput,
        ExpireMatchesOutput,
    )
    from polyvision.temporal import names


@dataclass
class RetentionInput:
    """Input of `RetentionWorkflow`.

    Attributes:
        batch: Matches per activity call.
        max_batches: Calls per run at most; what is left waits for the next day's run (keeps
            one run's history small however far behind retention is).
        activity_timeout: Start-to-close timeout of each call.
    """

    batch: int = 100
    max_batches: int = 50
    activity_timeout: timedelta = timedelta(minutes=30)


@dataclass
class RetentionOutput:
    """What one run expired.

    Attributes:
        expired: The matches expired, in the order they went.
        batches: Activity calls made.
        more: Matches past retention were left for the next run (``max_batches`` reached).
    """

    expired: list[ExpiredMatch] = field(default_factory=list)
    batches: int = 0
    more: bool = False


@workflow.defn(name=names.RETENTION_WORKFLOW)
class RetentionWorkflow:
    """Call `expire_matches` until nothing past retention is left (or ``max_batches``)."""

    @workflow.run
    async def run(self, input: RetentionInput | None = None) -> RetentionOutput:
        """Expire the matches past retention at the workflow's current time.

        Args:
            input: Batch sizes and timeouts; the defaults if None (the schedule passes none).

        Returns:
            The matches expired.
        """
        input = input or RetentionInput()
        now = workflow.now()
        output = RetentionOutput()
        more = True
        while more and output.batches < input.max_batches:
            result = await workflow.execute_activity(
                names.EXPIRE_MATCHES,
                ExpireMatchesInput(now=now, limit=input.batch),
                # The workflow's own queue: the cpu queue (with the deployment's suffix).
                task_queue=workflow.info().task_queue,
                start_to_close_timeout=input.activity_timeout,
                heartbeat_timeout=timedelta(minutes=2),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
                result_type=ExpireMatchesOutput,
            )
            output.batches += 1
            output.expired += result.expired
            more = result.more
        output.more = more
        return output
