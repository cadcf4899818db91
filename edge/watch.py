"""Watch a recordings directory and upload every finished pair, one at a time.

The recorder's convention (see ``edge/deepstream/README.md``): a pair named ``<name>`` is
``<name>_left.mp4`` and ``<name>_right.mp4``, and it is finished once ``<name>.done`` exists (the
recorder writes the marker last, after both files are closed). The rig is ``DIR/rig.json``
unless given explicitly.

Restarts are harmless: pairs already in the spool are recognised by their paths and resumed,
never hashed or enqueued twice. A pair whose content is already spooled under other names
(a copy) is hashed once, noted in the spool as a duplicate and not uploaded again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.spool import Recording, Spool, State
from edge.uploader import Uploader, describe_pair

MARKER_SUFFIX = ".done"
LEFT_SUFFIX = "_left.mp4"
RIGHT_SUFFIX = "_right.mp4"
RIG_FILENAME = "rig.json"


@dataclass(frozen=True)
class FinishedPair:
    """A pair the recorder has finished writing."""

    name: str
    left: Path
    right: Path
    marker: Path


def scan(directory: Path) -> list[FinishedPair]:
    """Finished pairs in ``directory`` (marker present, both files present), by name."""
    pairs: list[FinishedPair] = []
    for marker in sorted(directory.glob(f"*{MARKER_SUFFIX}")):
        name = marker.name[: -len(MARKER_SUFFIX)]
        left = directory / f"{name}{LEFT_SUFFIX}"
        right = directory / f"{name}{RIGHT_SUFFIX}"
        if name and left.is_file() and right.is_file():
            pairs.append(FinishedPair(name=name, left=left, right=right, marker=marker))
    return pairs


def pair_signature(left: Path, right: Path) -> str:
    """Sizes and modification times of both files: what tells a changed file without reading
    it.

    Raises:
        OSError: a file is gone.
    """
    parts = []
    for path in (left, right):
        st = path.stat()
        parts.append(f"{st.st_size}:{st.st_mtime_ns}")
    return "/".join(parts)


def pair_name(left: Path) -> str:
    """The pair name of a left recording: ``match1_left.mp4`` → ``match1``."""
    if left.name.endswith(LEFT_SUFFIX):
        return left.name[: -len(LEFT_SUFFIX)]
    return left.stem


Notify = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


class Watcher:
    """Enqueues finished pairs of one directory and uploads due pairs of the spool.

    Args:
        uploader: Uploads one spooled pair.
        spool: The spool.
        directory: The recordings directory.
        rig: The rig.json to send with each pair.
        part_size: Part size to ask the server for (None: its default).
        poll_s: Seconds between two scans when idle.
        notify: Receives one line per notable event (new pair, outcome).
    """

    def __init__(
        self,
        uploader: Uploader,
        spool: Spool,
        directory: Path,
        rig: Path,
        *,
        part_size: int | None = None,
        poll_s: float = 10.0,
        notify: Notify = _quiet,
    ) -> None:
        self._uploader = uploader
        self._spool = spool
        self._directory = directory
        self._rig = rig
        self._part_size = part_size
        self._poll_s = poll_s
        self._notify = notify
        # Pairs that could not be described (not a video, unreadable): reported once per run.
        self._unreadable: set[Path] = set()

    async def enqueue_new(self) -> list[Recording]:
        """Spool every finished pair not spooled yet."""
        added: list[Recording] = []
        for pair in scan(self._directory):
            left, right = pair.left.resolve(), pair.right.resolve()
            if left in self._unreadable or self._spool.find_by_paths(left, right) is not None:
                continue
            try:
                # Taken before hashing: a file that changes meanwhile is described again.
                signature = pair_signature(left, right)
            except OSError:
                continue  # removed since the scan; gone next time
            if self._spool.duplicate_of(left, right, signature) is not None:
                continue
            try:
                info = await asyncio.to_thread(
                    describe_pair, pair.name, left, right, self._rig, part_size=self._part_size
                )
            except (OSError, ValueError) as exc:
                self._unreadable.add(left)
                self._notify(f"{pair.name}: cannot read the pair, skipped: {exc}")
                continue
            recording = self._spool.enqueue(info)
            if (recording.info.left_path, recording.info.right_path) != (left, right):
                # Same digests, so same client_ref: the spool already holds this content.
                self._spool.record_duplicate(left, right, signature, recording.id)
                self._notify(
                    f"{pair.name}: same recordings as {recording.info.name} "
                    f"({recording.info.left_path.parent}), not uploaded again"
                )
                continue
            self._notify(f"{pair.name}: queued ({info.left_size + info.right_size} bytes)")
            added.append(recording)
        return added

    async def _process(self, recording: Recording) -> Recording:
        result = await self._uploader.process(recording.id)
        name = result.info.name
        if result.state is State.completed:
            self._notify(f"{name}: completed, match {result.match_id}, {result.workflow_id}")
            if result.files_deleted:
                marker = self._directory / f"{name}{MARKER_SUFFIX}"
                marker.unlink(missing_ok=True)
        elif result.state is State.failed:
            self._notify(f"{name}: failed, files kept: {result.last_error}")
        else:
            delay = max(0.0, result.next_attempt_at - time.time())
            self._notify(f"{name}: will retry in {delay:.0f} s: {result.last_error}")
        return result

    async def run_once(self) -> list[Recording]:
        """Enqueue what is there, then try every due pair once. Returns their outcomes."""
        await self.enqueue_new()
        return [await self._process(recording) for recording in self._spool.due()]

    async def run(self, stop: asyncio.Event) -> None:
        """Scan and upload until ``stop`` is set; an upload in flight is cancelled at once
        (its confirmed parts are on the server and in the spool, so nothing is lost)."""
        while not stop.is_set():
            await self.enqueue_new()
            for recording in self._spool.due():
                if stop.is_set():
                    return
                work = asyncio.create_task(self._process(recording))
                stopping = asyncio.create_task(stop.wait())
                await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await stopping
                if not work.done():
                    work.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await work
                    return
                work.result()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._idle_wait())

    def _idle_wait(self) -> float:
        due = self._spool.next_due_at()
        if due is None:
            return self._poll_s
        return max(0.05, min(self._poll_s, due - time.time()))
