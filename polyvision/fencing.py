"""Attempt fencing: a stale activity attempt cannot overwrite what a newer attempt wrote.

Temporal runs one attempt of an activity at a time, except in one case: a worker that stops
answering (a SIGSTOP, a long GC pause, a VM frozen by its host) misses its heartbeats, the server
times the attempt out and hands a new attempt to another worker. When the frozen worker wakes,
its attempt goes on writing until its next heartbeat tells it it was timed out. Stage outputs are
deterministic, so an overwritten object would hold the same bytes, but the analytics slices are
written as DELETE then INSERT, and two attempts interleaving those can leave duplicated rows.

The fence: each attempt of a match-scoped activity first *claims* its activity by writing its
attempt number to a small record in the object store (`claim_attempt`), unless a newer attempt
already claimed it. Every write of the object and analytics stores then checks, just before it
writes, that no newer attempt has claimed since (`ensure_current_attempt`,
`ensure_current_attempt_sync`); a stale attempt gets `StaleAttempt` instead of writing. The check
and the write are two steps, so a stale write can still land if the new attempt claims in the
microseconds between them; the interleaving that duplicates rows needs far more than that.

Outside an activity that claimed (tests, the API, scripts) the checks do nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from polyvision.storage.objects import ObjectStore

FENCE_FOLDER = "attempts"
"""The folder, inside a match revision's prefix, of the attempt records (deleted with it)."""

_SYNC_CHECK_TIMEOUT_S = 60.0


class StaleAttempt(RuntimeError):
    """A newer attempt of the same activity has claimed it: this one must not write."""


@dataclass(frozen=True)
class AttemptClaim:
    """One attempt's claim on its activity.

    Attributes:
        objects: The store holding the record (the same store the activity writes to).
        key: The record's key.
        attempt: This attempt's number (1 for the first).
        loop: The event loop the claim was made on (synchronous checks run the read there).
    """

    objects: ObjectStore
    key: str
    attempt: int
    loop: asyncio.AbstractEventLoop

    async def newest_attempt(self) -> int:
        """The newest attempt number the record holds (0 when there is none)."""
        from polyvision.storage.objects import ObjectNotFound

        try:
            record = json.loads(await self.objects.get(self.key))
        except ObjectNotFound:
            return 0
        return int(record.get("attempt", 0))

    async def ensure_current(self) -> None:
        """Raise `StaleAttempt` when a newer attempt has claimed the activity."""
        newest = await self.newest_attempt()
        if newest > self.attempt:
            raise StaleAttempt(
                f"attempt {self.attempt} was superseded by attempt {newest}; it writes nothing more"
            )


_claim: ContextVar[AttemptClaim | None] = ContextVar("polyvision_attempt_claim", default=None)


def fence_key(
    organization_id: str, match_id: str, revision: int, workflow_id: str, activity_id: str
) -> str:
    """The key of an activity's attempt record, inside its match revision's folder."""
    from polyvision.artifacts import artifact_key  # the artifacts module imports the stores

    name = hashlib.sha256(f"{workflow_id}\0{activity_id}".encode()).hexdigest()[:32]
    return artifact_key(organization_id, match_id, revision, FENCE_FOLDER, f"{name}.json")


async def claim_attempt(objects: ObjectStore, key: str, attempt: int) -> AttemptClaim:
    """Record ``attempt`` as the activity's newest attempt and return the claim.

    Raises:
        StaleAttempt: A newer attempt already claimed it (this one was handed out late).
    """
    claim = AttemptClaim(objects, key, attempt, asyncio.get_running_loop())
    await claim.ensure_current()
    body = json.dumps({"attempt": attempt}).encode()
    await objects.put(key, body, content_type="application/json")
    return claim


@contextlib.contextmanager
def attempt_claimed(claim: AttemptClaim) -> Iterator[None]:
    """Make ``claim`` the one the store writes in this context check."""
    token = _claim.set(claim)
    try:
        yield
    finally:
        _claim.reset(token)


def current_claim() -> AttemptClaim | None:
    """The claim of the attempt running in this context, if any."""
    return _claim.get()


async def ensure_current_attempt() -> None:
    """Before a store write: raise `StaleAttempt` if this context's attempt was superseded."""
    claim = _claim.get()
    if claim is not None:
        await claim.ensure_current()


def ensure_current_attempt_sync() -> None:
    """`ensure_current_attempt` for synchronous writers (the analytics store, in a thread).

    The record is read on the claim's event loop; the caller must not be that loop's thread
    (the stores' synchronous writes run in threads, via ``asyncio.to_thread``).

    Raises:
        StaleAttempt: This context's attempt was superseded.
        RuntimeError: Called on the claim's own event loop thread.
    """
    claim = _claim.get()
    if claim is None:
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is claim.loop:
        raise RuntimeError("a fenced synchronous write must run in a thread, not on the loop")
    future = asyncio.run_coroutine_threadsafe(claim.ensure_current(), claim.loop)
    future.result(timeout=_SYNC_CHECK_TIMEOUT_S)
