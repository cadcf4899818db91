"""Upload one recording pair through the API's resumable upload protocol.

The server is the authority on which parts it holds (``GET /uploads/{id}`` reads them from the
object store's multipart upload), so a resumed upload sends exactly the parts missing there,
whatever happened to this process in between. The spool mirrors the confirmed parts for
``polyvision-edge status`` and for a crash that happens between a part's 2xx and the next
request.

Local recordings are deleted only when asked (``delete_after_upload``) and only when the
server's completion answer says it verified both files with our own sha256 digests.

Completion can take minutes (the server assembles and hashes both files), longer than the
client's read timeout: the client then retries, and the server answers the retry ``409``
"completion in progress" while the first attempt runs. That answer means "wait and complete
again", never "parts missing" (the other ``409``, after which missing parts are sent).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av

from edge.client import ApiError, ApiUnavailable, EdgeClient, PartRejected, is_retryable
from edge.protocol import (
    SIDES,
    FileSide,
    FileSpec,
    OpenUpload,
    PartUrl,
    UploadSession,
    batches,
    missing_parts,
    part_range,
    parts_total,
)
from edge.spool import PairInfo, Recording, Spool

HASH_CHUNK = 4 * 1024 * 1024
URL_BATCH = 8
"""Part URLs asked for at a time: few enough that none expires before its part is sent."""
URL_MARGIN = timedelta(seconds=30)
"""A URL expiring sooner than this is asked for again rather than used."""
MAX_ROUNDS = 5
"""Send-missing-then-complete rounds before giving up until the next retry."""
COMPLETION_IN_PROGRESS_TYPE = "https://polyvision.dev/problems/completion-in-progress"
"""Problem type of the server's 409 while another request completes the session."""
"""The title of that problem type (fixed per type, RFC 9457)."""
COMPLETION_WAIT_S = 5.0
"""Seconds between two completion calls while the server completes, if it does not say."""
COMPLETION_PATIENCE_S = 30 * 60.0
"""How long to keep waiting for a completion in progress before retrying the pair later."""


class UploadIncomplete(RuntimeError):
    """The server still reports missing parts after `MAX_ROUNDS`; worth retrying later."""


class DeviceRejected(RuntimeError):
    """The API refused this device (401/403): revoked, or its key is not the registered one."""


@dataclass(frozen=True)
class Progress:
    """One step of an upload, for a progress display.

    Attributes:
        name: The pair's name.
        side: The file being sent.
        event: ``"resume"`` (parts already on the server counted) or ``"part"`` (one part sent).
        number: The part just sent (0 for ``"resume"``).
        parts_done: Parts of this file on the server.
        parts_total: Parts of this file.
        bytes_done: Bytes of this file on the server.
        bytes_total: Bytes of this file.
        file: The file's name (``left.mp4``), what a progress line is labelled by.
    """

    name: str
    side: FileSide
    event: str
    number: int
    parts_done: int
    parts_total: int
    bytes_done: int
    bytes_total: int
    file: str = ""

    @property
    def label(self) -> str:
        """What a progress line names: the file, else the pair and side."""
        return self.file or f"{self.name} {self.side}"


ProgressCallback = Callable[[Progress], None]
Sleep = Callable[[float], Awaitable[None]]


def _no_progress(_: Progress) -> None:
    return None


# --- describing a pair (pure file work, run in a thread) ---------------------------------------


def sha256_and_size(path: Path) -> tuple[str, int]:
    """Hex sha256 and byte size of ``path``, read in chunks (recordings are many GB)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def count_frames(path: Path) -> int:
    """Video frames in ``path``: the container's count, else the video packets counted."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream")
        stream = container.streams.video[0]
        if stream.frames:
            return int(stream.frames)
        # Some muxers (and files cut short) leave the count at 0; a full demux is exact.
        return sum(1 for packet in container.demux(stream) if packet.size)


def client_ref_for(left_sha256: str, right_sha256: str) -> str:
    """The pair's idempotency key: derived from its content, so any re-send of the same pair,
    after any crash or from a fresh spool, finds the same server session."""
    digest = hashlib.sha256(f"{left_sha256}:{right_sha256}".encode("ascii")).hexdigest()
    return f"edge-pair-{digest[:40]}"


def describe_pair(
    name: str,
    left: Path,
    right: Path,
    rig: Path,
    *,
    title: str | None = None,
    part_size: int | None = None,
    recorded_at: datetime | None = None,
) -> PairInfo:
    """Hash, measure and count both recordings of a pair (slow: reads both files).

    Args:
        name: The pair's base name.
        left: Left recording.
        right: Right recording.
        rig: The rig.json of the cameras.
        title: Match title.
        part_size: Part size to ask the server for.
        recorded_at: Recording time; the left file's modification time when omitted.
    """
    left_sha, left_size = sha256_and_size(left)
    right_sha, right_size = sha256_and_size(right)
    when = recorded_at or datetime.fromtimestamp(left.stat().st_mtime, UTC)
    return PairInfo(
        client_ref=client_ref_for(left_sha, right_sha),
        name=name,
        left_path=left.resolve(),
        right_path=right.resolve(),
        rig_path=rig.resolve(),
        title=title,
        recorded_at=when,
        left_size=left_size,
        right_size=right_size,
        left_sha256=left_sha,
        right_sha256=right_sha,
        left_frames=count_frames(left),
        right_frames=count_frames(right),
        part_size=part_size,
    )


def read_part(path: Path, offset: int, length: int) -> bytes:
    """Exactly ``length`` bytes of ``path`` from ``offset``.

    Raises:
        OSError: the file is shorter than that (it changed since it was spooled).
    """
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read(length)
    if len(data) != length:
        raise OSError(f"{path}: expected {length} bytes at {offset}, read {len(data)}")
    return data


def completion_in_progress(exc: ApiError) -> bool:
    """Whether a refused completion means "another request is completing this session: wait
    and complete again" rather than missing parts or a closed session.

    Told apart by the problem's ``type`` URI; never by the wording of ``detail``.
    """
    return exc.status == 409 and exc.problem_type == COMPLETION_IN_PROGRESS_TYPE


def completion_wait(exc: ApiError) -> float:
    """Seconds to wait before completing again: the server's ``Retry-After``, else
    `COMPLETION_WAIT_S`."""
    if exc.retry_after is not None and exc.retry_after > 0:
        return exc.retry_after
    return COMPLETION_WAIT_S


def spool_retry_delay(attempts: int, rng: random.Random | None = None) -> float:
    """Seconds before a pair whose upload failed transiently ``attempts`` times is tried again:
    30 s doubling up to an hour, with jitter so a fleet does not come back in step."""
    cap = min(3600.0, 30.0 * 2 ** max(0, attempts - 1))
    return (rng or random.Random()).uniform(cap / 2, cap)


# --- the upload --------------------------------------------------------------------------------


class Uploader:
    """Uploads spooled pairs one at a time.

    Args:
        client: The device's API client.
        spool: The spool holding the pairs.
        delete_after_upload: Delete both recordings once the server verified them.
        progress: Called after each part and when resuming.
        url_batch: Part URLs requested per call.
        sleep: Awaitable sleep, for the waits while the server completes (tests pass a fake).
        completion_patience_s: Longest wait for a completion in progress.
    """

    def __init__(
        self,
        client: EdgeClient,
        spool: Spool,
        *,
        delete_after_upload: bool = False,
        progress: ProgressCallback = _no_progress,
        url_batch: int = URL_BATCH,
        sleep: Sleep = asyncio.sleep,
        completion_patience_s: float = COMPLETION_PATIENCE_S,
    ) -> None:
        self._client = client
        self._spool = spool
        self._delete = delete_after_upload
        self._progress = progress
        self._url_batch = url_batch
        self._sleep = sleep
        self._patience_s = completion_patience_s

    async def process(self, recording_id: int) -> Recording:
        """Upload one pair and settle its spool state, whatever happens.

        Transient trouble (API unreachable, 5xx/429 after the client's retries, parts still
        missing) puts the pair back in ``queued`` with a later retry time; a refusal of the pair
        (422 and other 4xx) marks it ``failed`` with the server's detail; the files are kept.

        Raises:
            DeviceRejected: the API refused the device itself; the pair stays queued.
        """
        try:
            return await self.upload(recording_id)
        except (ApiUnavailable, UploadIncomplete) as exc:
            return self._later(recording_id, str(exc))
        except ApiError as exc:
            if exc.status in (401, 403):
                self._later(recording_id, exc.detail)
                raise DeviceRejected(exc.detail) from exc
            if is_retryable(exc.status):
                return self._later(recording_id, exc.detail)
            return self._spool.fail(recording_id, f"HTTP {exc.status}: {exc.detail}")
        except OSError as exc:
            # A recording vanished or changed under us: no retry will bring the bytes back.
            return self._spool.fail(recording_id, f"local file error: {exc}")

    def _later(self, recording_id: int, error: str) -> Recording:
        attempts = self._spool.get(recording_id).attempts
        return self._spool.retry_later(recording_id, error, spool_retry_delay(attempts))

    async def upload(self, recording_id: int) -> Recording:
        """Upload one pair, resuming its server session if it has one.

        Raises:
            ApiError: the API refused a request (other than the 409/422 handled here).
            ApiUnavailable: the API could not be reached.
            UploadIncomplete: parts still missing after `MAX_ROUNDS`, or the server still
                completing after the patience.
            OSError: a recording cannot be read or changed size.
        """
        recording = self._spool.start(recording_id)
        info = recording.info
        for side in SIDES:
            actual = recording.path(side).stat().st_size
            if actual != recording.size(side):
                raise OSError(
                    f"{recording.path(side)} is {actual} bytes, "
                    f"{recording.size(side)} when spooled: the file changed"
                )
        try:
            session = await self._client.open_upload(self._open_body(info))
        except ApiError as exc:
            if exc.status == 422:
                return self._spool.fail(recording_id, exc.detail)
            raise
        self._spool.set_session(recording_id, session.id, session.match_id, session.part_size)
        for _ in range(MAX_ROUNDS):
            if session.status == "completed":
                return self._finish(recording, session)
            if session.status in ("failed", "aborted"):
                return self._spool.fail(
                    recording_id, session.error or f"upload session {session.status}"
                )
            self._check_matches(recording, session)
            for side in SIDES:
                await self._send_missing(recording, session, side)
            try:
                done = await self._complete(info.name, session.id)
            except ApiError as exc:
                if exc.status == 422:
                    return self._spool.fail(recording_id, exc.detail)
                if exc.status != 409:
                    raise
                # Parts missing (or the session was closed meanwhile): look again.
                session = await self._client.get_upload(session.id)
                continue
            return self._finish(recording, done)
        raise UploadIncomplete(f"{info.name}: parts still missing after {MAX_ROUNDS} rounds")

    async def _complete(self, name: str, session_id: uuid.UUID) -> UploadSession:
        """Complete the session, waiting while another request (most likely our own earlier
        try whose answer timed out) is completing it.

        Raises:
            ApiError: the completion was refused otherwise.
            UploadIncomplete: still in progress after the patience; the pair is retried later.
        """
        waited = 0.0
        while True:
            try:
                return await self._client.complete(session_id)
            except ApiError as exc:
                if not completion_in_progress(exc):
                    raise
                if waited >= self._patience_s:
                    raise UploadIncomplete(
                        f"{name}: the server is still completing the upload after {waited:.0f} s"
                    ) from exc
                delay = completion_wait(exc)
                await self._sleep(delay)
                waited += delay

    def _open_body(self, info: PairInfo) -> OpenUpload:
        try:
            rig: Any = json.loads(info.rig_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise OSError(f"{info.rig_path} is not JSON: {exc}") from exc
        if not isinstance(rig, dict):
            raise OSError(f"{info.rig_path} must hold a JSON object")
        return OpenUpload(
            client_ref=info.client_ref,
            recorded_at=info.recorded_at,
            title=info.title,
            left=FileSpec(
                filename=info.left_path.name,
                size=info.left_size,
                sha256=info.left_sha256,
                frames=info.left_frames,
            ),
            right=FileSpec(
                filename=info.right_path.name,
                size=info.right_size,
                sha256=info.right_sha256,
                frames=info.right_frames,
            ),
            rig=rig,
            part_size=info.part_size,
        )

    @staticmethod
    def _check_matches(recording: Recording, session: UploadSession) -> None:
        for side in SIDES:
            remote = session.files[side]
            if remote.size != recording.size(side) or remote.sha256 != recording.sha256(side):
                raise ApiError(
                    409,
                    f"server session {session.id} describes another {side} file "
                    f"({remote.size} bytes, sha256 {remote.sha256})",
                )
            expected = parts_total(remote.size, session.part_size)
            if remote.parts_total != expected:
                raise ApiError(
                    409,
                    f"server counts {remote.parts_total} {side} parts of {session.part_size} "
                    f"bytes, we count {expected}",
                )

    async def _send_missing(
        self, recording: Recording, session: UploadSession, side: FileSide
    ) -> None:
        remote = session.files[side]
        size, part_size = remote.size, session.part_size
        done = sorted(set(remote.parts_done))
        self._spool.confirm_parts(
            recording.id, side, [(n, part_range(n, part_size, size)[1]) for n in done]
        )
        done_bytes = sum(part_range(n, part_size, size)[1] for n in done)
        self._progress(
            Progress(
                recording.info.name, side, "resume", 0, len(done), remote.parts_total,
                done_bytes, size, recording.path(side).name,
            )
        )  # fmt: skip
        for batch in batches(missing_parts(remote.parts_total, done), self._url_batch):
            urls = await self._client.part_urls(session.id, side, batch)
            by_number = {url.number: url for url in urls}
            for number in batch:
                url = by_number.get(number)
                if url is None or self._expiring(url):
                    url = (await self._client.part_urls(session.id, side, [number]))[0]
                offset, length = part_range(number, part_size, size)
                data = await asyncio.to_thread(read_part, recording.path(side), offset, length)
                try:
                    await self._client.put_part(url, data)
                except PartRejected:
                    # Most likely the URL expired while we waited (a slow uplink): one fresh
                    # URL; if that is refused too, the next round (or retry) sorts it out.
                    url = (await self._client.part_urls(session.id, side, [number]))[0]
                    try:
                        await self._client.put_part(url, data)
                    except PartRejected as exc:
                        raise UploadIncomplete(f"{side} part {number} refused: {exc}") from exc
                self._spool.confirm_parts(recording.id, side, [(number, length)])
                done.append(number)
                done_bytes += length
                self._progress(
                    Progress(
                        recording.info.name, side, "part", number, len(done),
                        remote.parts_total, done_bytes, size, recording.path(side).name,
                    )
                )  # fmt: skip

    @staticmethod
    def _expiring(url: PartUrl) -> bool:
        expires = url.expires_at
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        return expires - datetime.now(UTC) < URL_MARGIN

    def _finish(self, recording: Recording, session: UploadSession) -> Recording:
        verified = session.verified or {}
        mismatched = [side for side in SIDES if verified.get(side) != recording.sha256(side)]
        if mismatched:
            # The server says completed but vouches for other bytes (or for none): keep the
            # files and say so; this is not something a retry fixes.
            return self._spool.fail(
                recording.id,
                f"server completed the upload but verified {verified or 'nothing'} for "
                f"{', '.join(mismatched)}; local files kept",
            )
        done = self._spool.complete(recording.id, session.workflow_id)
        if self._delete:
            for side in SIDES:
                recording.path(side).unlink(missing_ok=True)
            self._spool.mark_files_deleted(recording.id)
            done = self._spool.get(recording.id)
        return done


def session_summary(recording: Recording) -> dict[str, Any]:
    """A JSON-friendly view of a spooled pair (for ``polyvision-edge status``)."""
    return {
        "id": recording.id,
        "name": recording.info.name,
        "state": recording.state.value,
        "client_ref": recording.info.client_ref,
        "session_id": str(recording.session_id) if recording.session_id else None,
        "match_id": str(recording.match_id) if recording.match_id else None,
        "workflow_id": recording.workflow_id,
        "attempts": recording.attempts,
        "next_attempt_at": recording.next_attempt_at,
        "last_error": recording.last_error,
        "files_deleted": recording.files_deleted,
        "left": str(recording.info.left_path),
        "right": str(recording.info.right_path),
    }
