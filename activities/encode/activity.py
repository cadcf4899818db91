"""The packaging stage as a Temporal activity: rendered chunks into HLS and DASH streams.

Thin on purpose: it downloads the chunk videos in playback order, remuxes them (no
re-encoding) and uploads every file it wrote under the match's ``hls/`` folder. The manifest is
written last, outside that folder (it is published to viewers, the manifest is not for them),
so a retried or replayed attempt with the same chunk videos returns at once.

With `PackageInput.chunk_renditions` (the vcam stage's ladder) it publishes the whole package
(`activities.encode.contracts` draws the layout): one set of CMAF segments per rendition with
HLS playlists (master, media, I-frame) and a DASH MPD over them
(`activities.encode.ladder.package_ladder`), thumbnail sprites with their WebVTT index from the
smallest rendition and a poster from the top one (`activities.encode.thumbnails`). Without
them (runs recorded before the ladder) it publishes ``chunk_video_keys`` as one HLS rendition
in the old layout (`activities.encode.hls.package_hls`). Either way,
`PackageInput.panorama_chunk_keys` (the stitch stage's chunks) become the panorama's own
stream under ``hls/panorama/``, and `PackageInput.minimap_chunk_keys` (the match drawn from
above, `activities.minimap`) the minimap's under ``hls/minimap/``.

A re-rendered view (``PackageInput.view``) is packaged the same way into its own folder,
``hls/views/{view}/``, with its manifest in ``encode/views/{view}/``; the match's own package
leaves that folder alone.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from temporalio import activity

from activities.encode.contracts import (
    DASH_MANIFEST,
    IFRAME_PLAYLIST,
    MASTER_PLAYLIST,
    MEDIA_PLAYLIST,
    MINIMAP_FOLDER,
    PANORAMA_FOLDER,
    POSTER,
    THUMBNAILS_VTT,
    VIEWS_FOLDER,
    PackagedRendition,
    PackageInput,
    PackageOutput,
    view_hls_folder,
)
from activities.encode.hls import CONTENT_TYPES, package_hls
from activities.encode.ladder import LadderRendition, LadderResult, package_ladder
from activities.encode.thumbnails import write_poster, write_thumbnails
from activities.vcam.contracts import RenditionChunk
from polyvision.heartbeat import heartbeat, heartbeating
from polyvision.stage import StageStep, object_digest
from polyvision.storage.objects import ObjectStore
from polyvision.temporal import names

CODE_VERSION = "package-4"
"""package-4: the minimap stream. package-3: renditions (HLS + DASH over one set of CMAF
segments), thumbnails, poster and the panorama stream. package-2: the manifest records the typed
output (StageStep)."""

STAGE = "encode"


class EncodeActivities:
    """The packaging activity, bound to the worker's object store.

    Args:
        objects: Object store holding the chunk videos, the published package and the manifest.
    """

    def __init__(self, objects: ObjectStore) -> None:
        self._objects = objects

    @activity.defn(name=names.PACKAGE_HLS)
    async def package(self, input: PackageInput) -> PackageOutput:
        """Remux the chunk videos into HLS and DASH (CMAF segments) and publish them."""
        step = await self._step(input)
        if (done := await step.recorded()) is not None:
            return done
        scratch = Path(tempfile.mkdtemp(prefix="pv-package-"))
        try:
            out_dir = scratch / "hls"
            if input.chunk_renditions:
                output = await self._package_ladder(input, scratch, out_dir, step.manifest_key)
            else:
                output = await self._package_single(input, scratch, out_dir, step.manifest_key)
            if input.panorama_chunk_keys and not input.view:
                output = await self._package_panorama(input, scratch, out_dir, output)
            if input.minimap_chunk_keys and not input.view:
                output = await self._package_minimap(input, scratch, out_dir, output)
            written = (path for path in out_dir.rglob("*") if path.is_file())
            files = publish_order(path.relative_to(out_dir).as_posix() for path in written)
            for uploaded, name in enumerate(files):
                await self._objects.upload_file(
                    self._hls_key(input, name),
                    out_dir / name,
                    content_type=CONTENT_TYPES.get(PurePosixPath(name).suffix),
                )
                heartbeat({"step": "upload", "files_done": uploaded + 1})
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        await self._remove_stale(input, set(files))
        return await step.record(output, {"files": files})

    async def _package_single(
        self, input: PackageInput, scratch: Path, out_dir: Path, manifest_key: str
    ) -> PackageOutput:
        """The old layout: ``chunk_video_keys`` as one HLS rendition."""
        chunk_paths = await self._download(input.chunk_video_keys, scratch / "chunks")
        async with heartbeating({"step": "package"}):
            result = await asyncio.to_thread(
                package_hls, chunk_paths, out_dir, input.segment_seconds
            )
        return PackageOutput(
            master_key=self._hls_key(input, MASTER_PLAYLIST),
            media_key=self._hls_key(input, MEDIA_PLAYLIST),
            segments=len(result.segments),
            duration_s=result.duration_s,
            manifest_key=manifest_key,
        )

    async def _package_ladder(
        self, input: PackageInput, scratch: Path, out_dir: Path, manifest_key: str
    ) -> PackageOutput:
        """Every rendition, the manifests over them, thumbnails and the poster."""
        renditions = []
        for name, keys in ladder_keys(input.chunk_renditions):
            paths = await self._download(keys, scratch / "chunks" / name)
            renditions.append(LadderRendition(name, paths))
        async with heartbeating({"step": "package"}):
            result = await asyncio.to_thread(
                package_ladder, renditions, out_dir, segment_seconds=input.segment_seconds
            )
        # Thumbnails from the smallest rendition (the cheapest to decode), poster from the top.
        smallest = min(
            result.streams, key=lambda stream: stream.result.width * stream.result.height
        )
        source = next(r for r in renditions if r.name == smallest.name)
        async with heartbeating({"step": "thumbnails"}):
            await asyncio.to_thread(write_thumbnails, source.chunk_paths, out_dir)
            await asyncio.to_thread(write_poster, renditions[0].chunk_paths, out_dir / POSTER)
        # The chunks are remuxed: free their disk before the panorama's are fetched.
        await asyncio.to_thread(shutil.rmtree, scratch / "chunks", ignore_errors=True)
        return PackageOutput(
            master_key=self._hls_key(input, MASTER_PLAYLIST),
            media_key=self._hls_key(input, result.streams[0].relative(MEDIA_PLAYLIST)),
            segments=result.segments,
            duration_s=result.duration_s,
            manifest_key=manifest_key,
            dash_key=self._hls_key(input, DASH_MANIFEST),
            thumbnails_key=self._hls_key(input, THUMBNAILS_VTT),
            poster_key=self._hls_key(input, POSTER),
            renditions=self._renditions(input, result),
        )

    async def _package_panorama(
        self, input: PackageInput, scratch: Path, out_dir: Path, output: PackageOutput
    ) -> PackageOutput:
        """The panorama's own stream, in ``panorama/`` (one rendition, its files flat)."""
        await self._package_stream(
            input, input.panorama_chunk_keys, PANORAMA_FOLDER, scratch, out_dir
        )
        output.panorama_master_key = self._hls_key(input, f"{PANORAMA_FOLDER}/{MASTER_PLAYLIST}")
        output.panorama_dash_key = self._hls_key(input, f"{PANORAMA_FOLDER}/{DASH_MANIFEST}")
        return output

    async def _package_minimap(
        self, input: PackageInput, scratch: Path, out_dir: Path, output: PackageOutput
    ) -> PackageOutput:
        """The minimap's own stream, in ``minimap/`` (one rendition, its files flat)."""
        await self._package_stream(
            input, input.minimap_chunk_keys, MINIMAP_FOLDER, scratch, out_dir
        )
        output.minimap_master_key = self._hls_key(input, f"{MINIMAP_FOLDER}/{MASTER_PLAYLIST}")
        output.minimap_dash_key = self._hls_key(input, f"{MINIMAP_FOLDER}/{DASH_MANIFEST}")
        return output

    async def _package_stream(
        self, input: PackageInput, keys: list[str], folder: str, scratch: Path, out_dir: Path
    ) -> None:
        """One stream of chunk videos as a single-rendition package in ``folder``."""
        paths = await self._download(keys, scratch / folder)
        async with heartbeating({"step": folder}):
            await asyncio.to_thread(
                package_ladder,
                [LadderRendition(folder, paths)],
                out_dir / folder,
                segment_seconds=input.segment_seconds,
                flat=True,
            )

    def _renditions(self, input: PackageInput, result: LadderResult) -> list[PackagedRendition]:
        return [
            PackagedRendition(
                name=stream.name,
                width=stream.result.width,
                height=stream.result.height,
                codecs=stream.result.codecs,
                bandwidth=stream.bandwidth,
                average_bandwidth=stream.average_bandwidth,
                media_key=self._hls_key(input, stream.relative(MEDIA_PLAYLIST)),
            )
            for stream in result.streams
        ]

    async def _step(self, input: PackageInput) -> StageStep[PackageOutput]:
        inputs: dict[str, Any] = {"segment_seconds": input.segment_seconds}
        if input.chunk_renditions:
            # The render stage's digests identify its chunks; no need to read them again.
            inputs["renditions"] = [
                [(r.name, r.video_key, r.sha256) for r in chunk] for chunk in input.chunk_renditions
            ]
        else:
            inputs["chunks"] = [
                (key, await object_digest(self._objects, key)) for key in input.chunk_video_keys
            ]
        if input.panorama_chunk_keys and not input.view:
            inputs["panorama"] = [
                (key, await object_digest(self._objects, key)) for key in input.panorama_chunk_keys
            ]
        if input.minimap_chunk_keys and not input.view:
            inputs["minimap"] = [
                (key, await object_digest(self._objects, key)) for key in input.minimap_chunk_keys
            ]
        return StageStep.for_match(
            self._objects,
            input,
            stage=STAGE,
            inputs=inputs,
            code_version=CODE_VERSION,
            output_type=PackageOutput,
            folder=(VIEWS_FOLDER, input.view) if input.view else (),
        )

    @staticmethod
    def _hls_key(input: PackageInput, name: str) -> str:
        """The published key of one file of the package (its folder's prefix for ``""``)."""
        folder = view_hls_folder(input.organization_id, input.match_id, input.revision, input.view)
        return folder + name

    async def _download(self, keys: list[str], folder: Path) -> list[Path]:
        """The chunk videos, downloaded in playback order."""
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        paths = []
        for index, chunk_key in enumerate(keys):
            path = folder / f"chunk-{index:05d}.mp4"
            await self._objects.download_file(chunk_key, path)
            paths.append(path)
            heartbeat({"step": "download", "folder": folder.name, "chunks_done": index + 1})
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


def ladder_keys(chunk_renditions: list[list[RenditionChunk]]) -> list[tuple[str, list[str]]]:
    """Per rendition (top first), its name and its chunks' keys in playback order.

    Raises:
        ValueError: The chunks do not all list the same renditions in the same order.
    """
    names = [rendition.name for rendition in chunk_renditions[0]]
    if not names:
        raise ValueError("chunk 0 lists no renditions")
    for index, chunk in enumerate(chunk_renditions):
        if [rendition.name for rendition in chunk] != names:
            listed = [rendition.name for rendition in chunk]
            raise ValueError(f"chunk {index} lists renditions {listed}, not {names}")
    return [
        (name, [chunk[position].video_key for chunk in chunk_renditions])
        for position, name in enumerate(names)
    ]


def publish_order(names: Iterable[str]) -> list[str]:
    """The package's files in the order to publish them: what the playlists name first, the
    entry points last (the match's ``master.m3u8`` very last, since the playback endpoint
    takes its presence as the mark of a complete package)."""

    def rank(name: str) -> tuple[int, str]:
        base = PurePosixPath(name).name
        if name == MASTER_PLAYLIST:
            return 4, name
        if base in (MASTER_PLAYLIST, DASH_MANIFEST):
            return 3, name
        if base in (MEDIA_PLAYLIST, IFRAME_PLAYLIST) or base.endswith(".vtt"):
            return 2, name
        return 1, name

    return sorted(names, key=rank)
