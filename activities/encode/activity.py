"""The packaging stage as a Temporal activity: per-chunk MP4s into one HLS VOD rendition.

Thin on purpose: it downloads the vcam stage's chunk videos in playback order, remuxes them
with :func:`~activities.encode.hls.package_hls` (no re-encoding) and uploads every file it
wrote under the match's ``hls/`` folder. The manifest is written last, outside that folder (it
is published to viewers, the manifest is not for them), so a retried or replayed attempt with
the same chunk videos returns at once.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from temporalio import activity

from activities.encode.hls import MASTER_PLAYLIST, MEDIA_PLAYLIST, package_hls
from polyvision.artifacts import (
    HLS_STAGE,
    Manifest,
    artifact_key,
    inputs_digest,
    read_matching_manifest,
    write_manifest,
)
from polyvision.heartbeat import heartbeat, heartbeating
from polyvision.storage.objects import ObjectStore

CODE_VERSION = "package-1"
"""Bump when the same chunk videos would give other playlists or segments."""


# Set explicitly: Python's mimetypes does not know the HLS and CMAF extensions everywhere.
CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
}


@dataclass
class PackageInput:
    """Package a match's rendered chunks.

    Attributes:
        organization_id: Tenant of the match.
        match_id: The match.
        revision: Processing revision.
        chunk_video_keys: Object keys of the chunks' H.264 MP4s, in playback order.
    """

    organization_id: str
    match_id: str
    revision: int
    chunk_video_keys: list[str]


@dataclass
class PackageOutput:
    """The published rendition.

    Attributes:
        master_key: Object key of ``master.m3u8``, the entry point for viewers.
        media_key: Object key of ``media.m3u8``.
        segments: Number of media segments.
        duration_s: Total duration in seconds.
        manifest_key: Where the manifest is.
        from_manifest: True when an earlier attempt's manifest answered.
    """

    master_key: str
    media_key: str
    segments: int
    duration_s: float
    manifest_key: str
    from_manifest: bool = False


class EncodeActivities:
    """The packaging activity, bound to the worker's object store.

    Args:
        objects: Object store holding the chunk videos, the HLS output and the manifest.
    """

    def __init__(self, objects: ObjectStore) -> None:
        self._objects = objects

    async def _digest(self, input: PackageInput) -> str:
        chunks = []
        for key in input.chunk_video_keys:
            info = await self._objects.stat(key)
            chunks.append((key, info.sha256 or f"{info.size}:{info.modified.isoformat()}"))
        return inputs_digest({"chunks": chunks})

    async def _remove_stale(self, prefix: str, keep: set[str]) -> None:
        # An earlier attempt with other chunks may have left more segments; no playlist names
        # them any more, and they should not outlive this one in the published folder.
        stale = [
            info.key
            async for info in self._objects.list_prefix(prefix)
            if info.key.removeprefix(prefix) not in keep
        ]
        for stale_key in stale:
            await self._objects.delete(stale_key)

    @activity.defn(name="package_hls")
    async def package(self, input: PackageInput) -> PackageOutput:
        """Remux the chunk videos into HLS (CMAF segments, one per chunk) and publish it."""

        def key(name: str) -> str:
            return artifact_key(
                input.organization_id, input.match_id, input.revision, HLS_STAGE, name
            )

        manifest_key = artifact_key(
            input.organization_id, input.match_id, input.revision, "encode", "package.manifest.json"
        )
        digest = await self._digest(input)
        done = await read_matching_manifest(self._objects, manifest_key, digest, CODE_VERSION)
        if done is not None:
            return PackageOutput(
                master_key=str(done.outputs["master_key"]),
                media_key=str(done.outputs["media_key"]),
                segments=int(done.outputs["segments"]),
                duration_s=float(done.outputs["duration_s"]),
                manifest_key=manifest_key,
                from_manifest=True,
            )
        scratch = Path(tempfile.mkdtemp(prefix="pv-package-"))
        try:
            chunk_paths = []
            for index, chunk_key in enumerate(input.chunk_video_keys):
                path = scratch / "chunks" / f"chunk-{index:05d}.mp4"
                path.parent.mkdir(exist_ok=True)
                await self._objects.download_file(chunk_key, path)
                chunk_paths.append(path)
                heartbeat({"step": "download", "chunks_done": index + 1})
            out_dir = scratch / "hls"
            async with heartbeating({"step": "package"}):
                result = await asyncio.to_thread(package_hls, chunk_paths, out_dir)
            # Segments first and playlists last: a viewer that finds a playlist finds
            # everything it names (the manifest, written after all of them, is the real mark).
            names = sorted(
                p.name for p in out_dir.iterdir() if p.name not in (MASTER_PLAYLIST, MEDIA_PLAYLIST)
            )
            for uploaded, name in enumerate([*names, MEDIA_PLAYLIST, MASTER_PLAYLIST]):
                file = out_dir / name
                await self._objects.upload_file(
                    key(name), file, content_type=CONTENT_TYPES.get(file.suffix)
                )
                heartbeat({"step": "upload", "files_done": uploaded + 1})
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        await self._remove_stale(key(""), {*names, MEDIA_PLAYLIST, MASTER_PLAYLIST})
        outputs = {
            "master_key": key(MASTER_PLAYLIST),
            "media_key": key(MEDIA_PLAYLIST),
            "segments": len(result.segments),
            "duration_s": result.duration_s,
            "files": [*names, MEDIA_PLAYLIST, MASTER_PLAYLIST],
        }
        await write_manifest(
            self._objects,
            manifest_key,
            Manifest(
                stage="package", inputs_digest=digest, code_version=CODE_VERSION, outputs=outputs
            ),
        )
        return PackageOutput(
            master_key=key(MASTER_PLAYLIST),
            media_key=key(MEDIA_PLAYLIST),
            segments=len(result.segments),
            duration_s=result.duration_s,
            manifest_key=manifest_key,
        )
