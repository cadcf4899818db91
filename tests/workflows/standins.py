"""Stand-in activities for the match workflow: the real names and dataclasses, no work at all.

They let a test run `MatchWorkflow` end to end at full scale (a 120-minute match, 720 chunks) in
seconds, to look at what Temporal records rather than at what the stages compute. Each returns
at once with small plausible values, keys shaped like the real ones, so the payloads in the
histories are about as large as in production.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from temporalio import activity

from activities.analyze.contracts import AnalyzeInput, AnalyzeOutput
from activities.detect.contracts import DetectChunkInput, DetectChunkOutput
from activities.encode.contracts import PackageInput, PackageOutput
from activities.index.contracts import CleanupInput, CleanupOutput, IndexInput, IndexOutput
from activities.ingest.chunks import plan_chunks
from activities.ingest.contracts import IngestInput, IngestOutput, RecordingSummary
from activities.minimap.contracts import MinimapInput, MinimapOutput
from activities.stitch.contracts import (
    StitchChunkInput,
    StitchChunkOutput,
    StitchPrepareInput,
    StitchPrepareOutput,
)
from activities.track.contracts import TrackInput, TrackOutput
from activities.vcam.contracts import (
    VcamPlanInput,
    VcamPlanOutput,
    VcamRenderInput,
    VcamRenderOutput,
)
from polyvision.temporal.queues import QueueRole


def _sha(text: str) -> str:
    # Real digests are 64 hex characters; the same length keeps the payload sizes honest.
    return hashlib.sha256(text.encode()).hexdigest()


def _prefix(organization_id: str, match_id: str, revision: int) -> str:
    return f"orgs/{organization_id}/matches/{match_id}/{revision}"


@dataclass(frozen=True)
class StandinMatch:
    """The recording the stand-in `ingest` pretends to have probed.

    Attributes:
        minutes: Length of the match.
        fps: Frame rate (an integer rate: the broadcast cameras' 25 fps).
        width: Frame width of each camera.
        height: Frame height of each camera.
        gop_seconds: Keyframe interval of both files (aligned GOPs: no decode waste).
    """

    minutes: float = 120.0
    fps: int = 25
    width: int = 3840
    height: int = 2160
    gop_seconds: float = 1.0

    @property
    def frame_count(self) -> int:
        """Frames in each recording."""
        return round(self.minutes * 60 * self.fps)


class StandinActivities:
    """Every activity `MatchWorkflow` and its batch children schedule, answering at once.

    Args:
        match: The recording the stand-in ``ingest`` pretends to have probed.
        before_index: Awaited by ``index_match`` before it answers: a test holds a run at its
            last step there (to look at its history, or to send it a ``reprocess``).
    """

    def __init__(
        self,
        match: StandinMatch,
        before_index: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._match = match
        self._before_index = before_index

    def _summary(self, key: str) -> RecordingSummary:
        match = self._match
        return RecordingSummary(
            key=key,
            codec="h264",
            width=match.width,
            height=match.height,
            fps_rational=f"{match.fps}/1",
            frame_count=match.frame_count,
            duration_s=match.frame_count / match.fps,
            keyframe_count=round(match.frame_count / (match.fps * match.gop_seconds)),
            has_audio=False,
            pix_fmt="yuv420p",
            bit_depth=8,
            size_bytes=match.frame_count * 60_000,  # about 12 Mbit/s at 25 fps
            sha256=_sha(key),
        )

    @activity.defn(name="ingest")
    async def ingest(self, input: IngestInput) -> IngestOutput:
        """Plan the chunks of the configured match (the real chunker, on synthetic keyframes)."""
        match = self._match
        gop = round(match.fps * match.gop_seconds)
        keyframes = list(range(0, match.frame_count, gop))
        chunks = plan_chunks(
            match.frame_count, Fraction(match.fps), keyframes, keyframes, input.chunk_seconds
        )
        left, right = self._summary(input.left_key), self._summary(input.right_key)
        return IngestOutput(
            left=left,
            right=right,
            frame_count=match.frame_count,
            fps=float(match.fps),
            fps_rational=f"{match.fps}/1",
            width=match.width,
            height=match.height,
            chunks=chunks,
            manifest_key=f"{_prefix(input.organization_id, input.match_id, input.revision)}"
            "/ingest/manifest.json",
            left_sha256=left.sha256,
            right_sha256=right.sha256,
            rig_sha256=_sha(input.rig_key),
        )

    @activity.defn(name="stitch_prepare")
    async def stitch_prepare(self, input: StitchPrepareInput) -> StitchPrepareOutput:
        """A panorama about 1.9 times a camera's width, with a 12-point pitch outline."""
        prefix = _prefix(input.organization_id, input.match_id, input.revision)
        width, height = round(self._match.width * 1.9 * input.scale), self._match.height
        outline = [(width * (0.05 + 0.075 * i), height * (0.2 + 0.05 * (i % 3))) for i in range(12)]
        return StitchPrepareOutput(f"{prefix}/stitch/panorama.json", width, height, outline)

    @activity.defn(name="stitch_chunk")
    async def stitch_chunk(self, input: StitchChunkInput) -> StitchChunkOutput:
        """The chunk's panorama video."""
        prefix = _prefix(input.organization_id, input.match_id, input.revision)
        key = f"{prefix}/stitch/chunk-{input.chunk:05d}.mp4"
        return StitchChunkOutput(
            chunk=input.chunk,
            video_key=key,
            sha256=_sha(key),
            frames=input.end_frame - input.start_frame,
            manifest_key=f"{prefix}/stitch/chunk-{input.chunk:05d}.json",
        )

    @activity.defn(name="detect_chunk")
    async def detect_chunk(self, input: DetectChunkInput) -> DetectChunkOutput:
        """About 22 players and a ball per frame of a 10 s chunk."""
        prefix = _prefix(input.organization_id, input.match_id, input.revision)
        return DetectChunkOutput(
            chunk=input.chunk,
            frames=250,
            persons=250 * 22,
            balls=230,
            manifest_key=f"{prefix}/detect/chunk-{input.chunk:05d}.json",
        )

    @activity.defn(name="track_match")
    async def track_match(self, input: TrackInput) -> TrackOutput:
        """Tracks and points in proportion to the match's length."""
        prefix = _prefix(input.organization_id, input.match_id, input.revision)
        per_chunk = [c.frames * 22 for c in input.chunks]
        return TrackOutput(
            tracks=40 + len(input.chunks),
            points=sum(per_chunk),
            manifest_key=f"{prefix}/track/manifest.json",
            points_per_chunk=per_chunk,
        )

    @activity.defn(name="vcam_plan")
    async def vcam_plan(self, input: VcamPlanInput) -> VcamPlanOutput:
        """The virtual camera's path over the whole match."""
        prefix = _prefix(input.organization_id, input.match_id, input.revision)
        return VcamPlanOutput(
            path_key=f"{prefix}/vcam/path.parquet",
            frames=sum(c.frames for c in input.chunks),
            manifest_key=f"{prefix}/vcam/manifest.json",
        )

    @activity.defn(name="vcam_render")
    async def vcam_render(self, input: VcamRenderInput) -> VcamRenderOutput:
        """The chunk's rendered 720p view."""
        prefix = _prefix(input.organization_id, input.match_id, input.revision)
        key = f"{prefix}/vcam/chunk-{input.chunk:05d}.mp4"
        return VcamRenderOutput(
            chunk=input.chunk,
            video_key=key,
            sha256=_sha(key),
            frames=input.frames,
            manifest_key=f"{prefix}/vcam/chunk-{input.chunk:05d}.json",
        )

    @activity.defn(name="analyze_match")
    async def analyze_match(self, input: AnalyzeInput) -> AnalyzeOutput:
        """Team and player figures of the match."""
        prefix = _prefix(input.organization_id, input.match_id, input.revision)
        return AnalyzeOutput(
            tracks=40 + len(input.chunks),
            total_distance_m=22 * 10_500.0,
            heatmaps_key=f"{prefix}/analyze/heatmaps.npz",
            manifest_key=f"{prefix}/analyze/manifest.json",
        )

    @activity.defn(name="minimap_render")
    async def minimap_render(self, input: MinimapInput) -> MinimapOutput:
        """The match drawn from above, a video per chunk."""
        prefix = _prefix(input.organization_id, input.match_id, input.revision)
        return MinimapOutput(
            chunk_keys=[f"{prefix}/minimap/chunk-{c.chunk:05d}.mp4" for c in input.chunks],
            manifest_key=f"{prefix}/minimap/manifest.json",
        )

    @activity.defn(name="package_hls")
    async def package_hls(self, input: PackageInput) -> PackageOutput:
        """One HLS rendition with a segment per rendered chunk."""
        prefix = _prefix(input.organization_id, input.match_id, input.revision)
        return PackageOutput(
            master_key=f"{prefix}/hls/master.m3u8",
            media_key=f"{prefix}/hls/media.m3u8",
            segments=len(input.chunk_video_keys),
            duration_s=10.0 * len(input.chunk_video_keys),
            manifest_key=f"{prefix}/hls/manifest.json",
        )

    @activity.defn(name="index_match")
    async def index_match(self, input: IndexInput) -> IndexOutput:
        """The match summary, and the catalog marked ready."""
        if self._before_index is not None:
            await self._before_index()
        prefix = _prefix(input.organization_id, input.match_id, input.revision)
        return IndexOutput(summary_key=f"{prefix}/summary.json", catalog_updated=True)

    @activity.defn(name="cleanup_match")
    async def cleanup_match(self, input: CleanupInput) -> CleanupOutput:
        """Nothing was written, so nothing is deleted."""
        return CleanupOutput(objects_deleted=0)

    def for_role(self, role: QueueRole) -> list[Callable[..., Any]]:
        """The stand-ins a worker on a queue of this role registers, as `activities_for` splits
        the real ones (GPU stages on gpu; rendering on cpu, and on gpu for runs started before
        the ladder; the rest on cpu)."""
        if role is QueueRole.gpu:
            return [self.stitch_chunk, self.detect_chunk, self.vcam_render]
        if role is QueueRole.cpu:
            return [
                self.ingest,
                self.stitch_prepare,
                self.track_match,
                self.vcam_plan,
                self.vcam_render,
                self.analyze_match,
                self.minimap_render,
                self.package_hls,
                self.index_match,
                self.cleanup_match,
            ]
        return []
