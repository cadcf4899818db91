"""The worker interceptor that fences activity attempts (`polyvision.fencing`).

Every attempt of a match-scoped activity (its first argument carries ``organization_id``,
``match_id`` and ``revision``) claims its activity before it runs, and runs with the claim in
its context, so each store write checks it was not superseded. An attempt that finds itself
superseded ends with a non-retryable error: the server already timed it out, so nothing waits
for its result, and the log says what happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from polyvision.fencing import StaleAttempt, attempt_claimed, claim_attempt, fence_key
from polyvision.storage.objects import ObjectStore

log = structlog.get_logger(__name__)

STALE_ATTEMPT_ERROR = "StaleAttempt"
"""The ApplicationError type of an attempt that stopped because a newer one claimed."""


def match_scope(args: Sequence[Any]) -> tuple[str, str, int] | None:
    """(organization, match, revision) of an activity's first argument, when it has them."""
    if not args:
        return None
    first = args[0]
    organization = getattr(first, "organization_id", None)
    match = getattr(first, "match_id", None)
    revision = getattr(first, "revision", None)
    if not (isinstance(organization, str) and isinstance(match, str)):
        return None
    if not isinstance(revision, int) or isinstance(revision, bool):
        return None
    return organization, match, revision


class _Inbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, objects: ObjectStore) -> None:
        super().__init__(next)
        self._objects = objects

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        scope = match_scope(input.args)
        if scope is None:
            return await self.next.execute_activity(input)
        info = activity.info()
        key = fence_key(*scope, info.workflow_id or "", info.activity_id)
        try:
            claim = await claim_attempt(self._objects, key, info.attempt)
            with attempt_claimed(claim):
                return await self.next.execute_activity(input)
        except StaleAttempt as exc:
            log.warning(
                "activity.stale_attempt",
                activity_type=info.activity_type,
                attempt=info.attempt,
                reason=str(exc),
            )
            raise ApplicationError(str(exc), type=STALE_ATTEMPT_ERROR, non_retryable=True) from exc


class AttemptFenceInterceptor(Interceptor):
    """Claims each match-scoped activity attempt in ``objects`` before it runs."""

    def __init__(self, objects: ObjectStore) -> None:
        self._objects = objects

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next, self._objects)
