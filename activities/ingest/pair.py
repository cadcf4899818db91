"""A match's two recordings handled side by side: downloaded, hashed and probed together.

Each step runs its left and right halves at once and waits for both before raising, so the
caller's scratch directory is never removed under a download or a probe that is still running.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TypeVar, cast

from activities.ingest.probe import VideoProbe, probe_video, sha256_file
from activities.ingest.validate import RecordingMismatchError
from polyvision.storage.objects import ChecksumMismatch, ObjectInfo, ObjectStore

T = TypeVar("T")

_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}")


@dataclass(frozen=True)
class LocalRecording:
    """One recording downloaded to local scratch.

    Attributes:
        key: Object key it was read from.
        path: The local copy.
        sha256: Hex sha256 of what was read: the store's record (which the download verified),
            else hashed here.
        hashed_here: The store recorded no sha256, so it was computed from the local copy.
    """

    key: str
    path: Path
    sha256: str
    hashed_here: bool


async def both(left: Awaitable[T], right: Awaitable[T]) -> tuple[T, T]:
    """Run the left and right halves of a step together; raise the left one's error first.

    Unlike a plain `asyncio.gather`, both halves have finished when an error is raised, so the
    scratch directory is never removed under a download that is still writing.
    """
    results = await asyncio.gather(left, right, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return cast(T, results[0]), cast(T, results[1])


def local_suffix(key: str) -> str:
    """The key's extension when it looks like one (a hint to FFmpeg's probing), else none."""
    suffix = PurePosixPath(key).suffix
    return suffix if _SUFFIX.fullmatch(suffix) else ""


async def download_pair(
    objects: ObjectStore, left_key: str, right_key: str, workdir: Path
) -> tuple[LocalRecording, LocalRecording]:
    """Stream both recordings into ``workdir`` and learn the digest of what was read.

    The digests are those of what was actually read (the object may have been replaced since
    it was last looked at): `ObjectStore.download_file` verified them against the store's
    record where it had one; otherwise the local copy is hashed.

    Raises:
        ObjectNotFound: a recording is missing.
        RecordingMismatchError: a recording's content does not match its recorded digest.
    """
    left_path = workdir / f"left{local_suffix(left_key)}"
    right_path = workdir / f"right{local_suffix(right_key)}"
    left_read, right_read = await both(
        _download(objects, "left", left_key, left_path),
        _download(objects, "right", right_key, right_path),
    )
    return (
        await _local(left_key, left_path, left_read),
        await _local(right_key, right_path, right_read),
    )


async def probe_pair(left: LocalRecording, right: LocalRecording) -> tuple[VideoProbe, VideoProbe]:
    """Probe both copies on worker threads (FFmpeg releases the GIL while it decodes).

    Errors name the object keys, not the scratch files; each probe carries its copy's sha256.

    Raises:
        InvalidRecordingError: a file is not a usable recording.
    """
    left_probe, right_probe = await both(
        asyncio.to_thread(probe_video, left.path, label=left.key),
        asyncio.to_thread(probe_video, right.path, label=right.key),
    )
    return (
        dataclasses.replace(left_probe, sha256=left.sha256),
        dataclasses.replace(right_probe, sha256=right.sha256),
    )


async def _download(objects: ObjectStore, side: str, key: str, path: Path) -> ObjectInfo:
    """Stream one recording to `path`; a content/digest disagreement is a bad upload."""
    try:
        return await objects.download_file(key, path)
    except ChecksumMismatch as exc:
        raise RecordingMismatchError(
            [f"checksum of {side} does not match the upload ({exc})"]
        ) from exc


async def _local(key: str, path: Path, info: ObjectInfo) -> LocalRecording:
    """The downloaded copy with its sha256: the store's, else hashed here."""
    if info.sha256 is not None:
        return LocalRecording(key, path, info.sha256, hashed_here=False)
    return LocalRecording(key, path, await asyncio.to_thread(sha256_file, path), hashed_here=True)
