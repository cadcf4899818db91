"""A stale activity attempt (its worker frozen past the heartbeat timeout, then woken) cannot
overwrite what the newer attempt wrote (`polyvision.fencing`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from polyvision.fencing import (
    StaleAttempt,
    attempt_claimed,
    claim_attempt,
    ensure_current_attempt_sync,
    fence_key,
)
from polyvision.storage.objects import ObjectStore, open_object_store
from polyvision.temporal.attempt_fence import match_scope

KEY = fence_key("o1", "m1", 1, "match-m1-r1-stitch-0000", "3")


@pytest.fixture
async def objects(tmp_path: Path) -> ObjectStore:
    return open_object_store(
        f"file://{tmp_path / 'objects'}", secret=b"s" * 32, public_base_url="http://t"
    )


async def test_a_superseded_attempt_cannot_overwrite_the_newer_output(objects: ObjectStore) -> None:
    output = "orgs/o1/matches/m1/1/stitch/chunk-00000/panorama.mp4"
    woken = asyncio.Event()
    superseded = asyncio.Event()

    async def stale_attempt() -> None:
        claim = await claim_attempt(objects, KEY, attempt=1)
        with attempt_claimed(claim):
            await objects.put(output, b"attempt 1, before the freeze")
            superseded.set()
            await woken.wait()  # frozen while attempt 2 runs
            with pytest.raises(StaleAttempt, match="superseded by attempt 2"):
                await objects.put(output, b"attempt 1, after waking")
            with pytest.raises(StaleAttempt):
                await objects.delete(output)

    async def newer_attempt() -> None:
        await superseded.wait()
        claim = await claim_attempt(objects, KEY, attempt=2)
        with attempt_claimed(claim):
            await objects.put(output, b"attempt 2")
        woken.set()

    await asyncio.gather(stale_attempt(), newer_attempt())

    assert await objects.get(output) == b"attempt 2"


async def test_an_attempt_handed_out_after_a_newer_one_claimed_is_refused(
    objects: ObjectStore,
) -> None:
    await claim_attempt(objects, KEY, attempt=3)

    with pytest.raises(StaleAttempt):
        await claim_attempt(objects, KEY, attempt=2)
    # The same attempt again (a worker restart re-running it) and a newer one are fine.
    await claim_attempt(objects, KEY, attempt=3)
    await claim_attempt(objects, KEY, attempt=4)


async def test_writes_outside_a_claimed_attempt_are_not_fenced(objects: ObjectStore) -> None:
    await claim_attempt(objects, KEY, attempt=5)

    await objects.put("orgs/o1/matches/m1/1/stitch/x.bin", b"api or test write")
    await asyncio.to_thread(ensure_current_attempt_sync)

    assert await objects.get("orgs/o1/matches/m1/1/stitch/x.bin") == b"api or test write"


async def test_a_synchronous_check_refuses_a_stale_attempt_from_a_thread(
    objects: ObjectStore,
) -> None:
    stale = await claim_attempt(objects, KEY, attempt=1)
    await claim_attempt(objects, KEY, attempt=2)

    with attempt_claimed(stale):
        with pytest.raises(StaleAttempt):
            await asyncio.to_thread(ensure_current_attempt_sync)
        with pytest.raises(RuntimeError, match="in a thread"):
            ensure_current_attempt_sync()


def test_only_match_scoped_activities_are_fenced() -> None:
    class Scoped:
        organization_id = "o1"
        match_id = "m1"
        revision = 2

    class Unscoped:
        now = "2026-12-07T00:00:00Z"

    assert match_scope((Scoped(),)) == ("o1", "m1", 2)
    assert match_scope((Unscoped(),)) is None
    assert match_scope(()) is None
