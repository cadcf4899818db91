"""The packaging stage as a Temporal activity: per-chunk MP4s into one HLS VOD rendition.

Thin on purpose: it downloads the vcam stage's chunk videos in playback order, remuxes them
with :func:`~activities.encode.hls.package_hls` (no re-encoding) and uploads every file it
wrote under the match's ``hls/`` folder. The manifest is written last, outside that folder (it
is published to viewers, the manifest is not for them), so a retried or replayed attempt with
the same chunk videos returns at once.

A re-rendered view (``PackageInput.view``) is packaged the same way into its own folder,
``hls/views/{view}/``, with its manifest in ``encode/views/{view}/``; the match's own package
leaves that folder alone.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from temporalio import activity

from activities.encode.contracts import (
    VIEWS_FOLDER,
    PackageInput,
    PackageOutput,
    view_hls_folder,
)
from activities.encode.hls import (
    CONTENT_TYPES,
    MASTER_PLAYLIST,
    MEDIA_PLAYLIST,
    package_hls,
    publish_order,
)
from polyvision.heartbeat import heartbeat, heartbeating
from polyvision.stage import StageStep, object_digest
from polyvision.storage.objects import ObjectStore
from polyvision.temporal import names

CODE_VERSION = "package-2"
"""package-2: the manifest records the typed output (StageStep), at ``encode/manifest.json``."""

STAGE = "encode"


class EncodeActivities:
    """The packaging activity, bound to the worker's object store.

    Args:
        objects: Object store holding the chunk videos, the HLS output and the manifest.
    """

    def __init__(self, objects: ObjectStore) -> None:
        self._objects = objects

    @activity.defn(name=names.PACKAGE_HLS)
    async def package(self, input: PackageInput) -> PackageOutput:
        """Remux the chunk videos into HLS (CMAF segments, one per chunk) and publish it."""
        step = await self._step(input)
        if (done := await step.recorded()) is not None:
            return done
        scratch = Path(tempfile.mkdtemp(prefix="pv-package-"))
        try:
            chunk_paths = await self._download_chunks(input, scratch / "chunks")
            out_dir = scratch / "hls"
            async with heartbeating({"step": "package"}):
                result = await asyncio.to_thread(package_hls, chunk_paths, out_dir)
            # Segments first and playlists last: a viewer that finds a playlist finds
            # everything it names (the manifest, written after all of them, is the real mark).
            files = publish_order(path.name for path in out_dir.iterdir())
            for uploaded, name in enumerate(files):
                file = out_dir / name
                await self._objects.upload_file(
                    self._hls_key(input, name), file, content_type=CONTENT_TYPES.get(file.suffix)
                )
                heartbeat({"step": "upload", "files_done": uploaded + 1})
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        await self._remove_stale(input, set(files))
        output = PackageOutput(
            master_key=self._hls_key(input, MASTER_PLAYLIST),
            media_key=self._hls_key(input, MEDIA_PLAYLIST),
            segments=len(result.segments),
            duration_s=result.duration_s,
            manifest_key=step.manifest_key,
        )
        return await step.record(output, {"files": files})

    async def _step(self, input: PackageInput) -> StageStep[PackageOutput]:
        chunks = [(key, await object_digest(self._objects, key)) for key in input.chunk_video_keys]
        return StageStep.for_match(
            self._objects,
            input,
            stage=STAGE,
            inputs={"chunks": chunks},
            code_version=CODE_VERSION,
            output_type=PackageOutput,
            folder=(VIEWS_FOLDER, input.view) if input.view else (),
        )

    @staticmethod
    def _hls_key(input: PackageInput, name: str) -> str:
        """The published key of one file of the package (its folder's prefix for ``""``)."""
        folder = view_hls_folder(input.organization_id, input.match_id, input.revision, input.view)
        return folder + name

    async def _download_chunks(self, input: PackageInput, folder: Path) -> list[Path]:
        """The chunk videos, downloaded in playback order."""
        await asyncio.to_thread(folder.mkdir, exist_ok=True)
        paths = []
        for index, chunk_key in enumerate(input.chunk_video_keys):
            path = folder / f"chunk-{index:05d}.mp4"
            await self._objects.download_file(chunk_key, path)
            paths.append(path)
            heartbeat({"step": "download", "chunks_done": index + 1})
        return paths

    async def _remove_stale(self, input: PackageInput, keep: set[str]) -> None:
        # An earlier attempt with other chunks may have left more segments; no playlist names
        # them any more, and they should not outlive this one in the published folder. The
        # views' folders inside the match's own are theirs: never stale for the match.
        prefix = self._hls_key(input, "")
        views = f"{VIEWS_FOLDER}/"
        stale = [
            info.key
            async for info in self._objects.list_prefix(prefix)
            if (name := info.key.removeprefix(prefix)) not in keep
            and (input.view or not name.startswith(views))
        ]
        for stale_key in stale:
            await self._objects.delete(stale_key)
