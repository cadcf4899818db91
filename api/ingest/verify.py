"""Verification of an assembled recording against its declaration."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass

from polyvision.storage.objects import ObjectStore

# Large reads amortise the thread hop each chunk's hashing takes.
_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class Measured:
    """Size and sha256 of an object, computed by reading all of it."""

    size: int
    sha256: str


async def measure(objects: ObjectStore, key: str) -> Measured:
    """Stream the object at `key` and hash it; never holds more than one chunk in memory.

    Raises:
        ObjectNotFound: no object at `key`.
    """
    digest = hashlib.sha256()
    size = 0
    async with await objects.open_read(key, chunk_size=_CHUNK) as reader:
        async for chunk in reader:
            size += len(chunk)
            # hashlib releases the GIL on large buffers, so hashing on a thread keeps the event
            # loop serving other requests while a multi-GiB recording is verified.
            await asyncio.to_thread(digest.update, chunk)
    return Measured(size=size, sha256=digest.hexdigest())


def verification_problems(
    side: str, expected_size: int, expected_sha256: str, measured: Measured
) -> list[str]:
    """What differs between the declaration and the assembled file, one sentence each."""
    problems: list[str] = []
    if measured.size != expected_size:
        problems.append(f"{side}: size differs: declared {expected_size}, received {measured.size}")
    if measured.sha256 != expected_sha256:
        problems.append(
            f"{side}: sha256 differs: declared {expected_sha256}, received {measured.sha256}"
        )
    return problems
